"""AES-CTR PRG: keystream layout, determinism, continuation, dtypes, uniformity, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import given, settings
from hypothesis import strategies as st

from securecomp.crypto import prg as prg_module
from securecomp.crypto.prg import MAX_STREAM_BYTES, SEED_BYTES, AesCtrPrg
from securecomp.errors import ParameterError, ShapeMismatchError

SEED = bytes(range(32))
CHUNK = prg_module._CHUNK

INT_DTYPES = [
    np.int8, np.uint8, np.int16, np.uint16, np.int32, np.uint32, np.int64, np.uint64,
    ">u2", ">i4", ">u8", "<u8", np.intp, np.uintp,
]  # fmt: skip


def reference(seed: bytes, n: int, stream: int = 0) -> bytes:
    """The first n keystream bytes, computed in one shot by the raw library."""
    nonce = stream.to_bytes(8, "big") + bytes(8)
    return Cipher(algorithms.AES(seed), modes.CTR(nonce)).encryptor().update(bytes(n))


def chi2_upper(df: int, z: float = 4.753) -> float:
    """Upper chi-square quantile at p ≈ 1e-6 (Wilson–Hilferty; accurate for df ≥ 5)."""
    h = 2.0 / (9.0 * df)
    return df * (1.0 - h + z * math.sqrt(h)) ** 3


def chi2_stat(counts: np.ndarray, expected: float) -> float:
    return float(((counts - expected) ** 2 / expected).sum())


# --- keystream layout and known answers ---------------------------------------------------


def test_first_block_is_aes256_of_zero_counter() -> None:
    # FIPS-197-style known answer: AES-256 with the all-zero key on the all-zero block.
    assert AesCtrPrg(bytes(32)).bytes(16).hex() == "dc95c078a2408989ad48a21492842087"


@pytest.mark.parametrize("stream", [0, 1, 7, 2**63 + 5, 2**64 - 1])
def test_counter_blocks_are_stream_id_then_block_index(stream: int) -> None:
    # Independent computation: AES-ECB on explicit counter blocks stream || i.
    ecb = Cipher(algorithms.AES(SEED), modes.ECB()).encryptor()
    blocks = b"".join(stream.to_bytes(8, "big") + i.to_bytes(8, "big") for i in range(5))
    assert AesCtrPrg(SEED, stream=stream).bytes(80) == ecb.update(blocks)


# --- determinism and independence ---------------------------------------------------------


def test_same_seed_same_stream_is_deterministic() -> None:
    a = AesCtrPrg(SEED).random_uint64(1000)
    b = AesCtrPrg(bytearray(SEED)).random_uint64(1000)  # type: ignore[arg-type]
    np.testing.assert_array_equal(a, b)


def test_distinct_seeds_and_streams_differ() -> None:
    n = 4096
    base = AesCtrPrg(SEED).bytes(n)
    other_seed = AesCtrPrg(bytes(31) + b"\x01").bytes(n)
    other_stream = AesCtrPrg(SEED, stream=1).bytes(n)
    assert len({base, other_seed, other_stream}) == 3
    # Streams are disjoint windows of one counter space, not shifted copies of each other.
    assert other_stream[:16] not in base


def test_from_random_seeds_differ() -> None:
    a, b = AesCtrPrg.from_random(), AesCtrPrg.from_random()
    assert a.bytes(32) != b.bytes(32)


# --- continuation across calls ------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 15, 16, 17, 1000, CHUNK - 1, CHUNK, CHUNK + 1])
def test_two_fills_equal_one_double_fill(n: int) -> None:
    whole = np.empty(2 * n, np.uint8)
    AesCtrPrg(SEED).fill(whole)
    prg = AesCtrPrg(SEED)
    first, second = np.empty(n, np.uint8), np.empty(n, np.uint8)
    prg.fill(first)
    prg.fill(second)
    np.testing.assert_array_equal(np.concatenate([first, second]), whole)
    assert prg.position == 2 * n


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["fill8", "fill64", "bytes"]), st.integers(0, 70))))
def test_mixed_calls_continue_the_stream(calls: list[tuple[str, int]]) -> None:
    prg = AesCtrPrg(SEED, stream=3)
    pieces = []
    for kind, k in calls:
        if kind == "bytes":
            pieces.append(prg.bytes(k))
        elif kind == "fill8":
            pieces.append(prg.fill(np.empty(k, np.uint8)).tobytes())
        else:
            pieces.append(prg.fill(np.empty(k, np.uint64)).tobytes())
    out = b"".join(pieces)
    assert out == reference(SEED, len(out), stream=3)
    assert prg.position == len(out)


class StrictEncryptor:
    """Wraps a CTR encryptor with the older `update_into` rule: output >= input + 15."""

    def __init__(self, inner: object) -> None:
        self.inner = inner
        self.calls = 0

    def update_into(self, data: memoryview, out: memoryview | bytearray) -> int:
        self.calls += 1
        if len(out) < len(data) + 15:
            raise ValueError("buffer must be at least len(data) + 15 bytes")
        return self.inner.update_into(data, out)  # type: ignore[attr-defined]


@pytest.mark.parametrize("n", [1, 14, 15, 16, 31, 100, CHUNK - 1, CHUNK + 3, 2 * CHUNK + 15])
def test_slack_path_for_libraries_that_need_output_room(
    n: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Emulate a cryptography release that demands 15 bytes of output slack.
    monkeypatch.setattr(prg_module, "_output_slack", lambda: 15)
    prg = AesCtrPrg(SEED)
    strict = StrictEncryptor(prg._encryptor)
    prg._encryptor = strict  # type: ignore[assignment]
    out = np.empty(n, np.uint8)
    prg.fill(out)
    tail = prg.bytes(5)
    assert out.tobytes() + tail == reference(SEED, n + 5)
    assert strict.calls >= 1


# --- fill: dtypes, shapes, no reallocation, refusals --------------------------------------


@pytest.mark.parametrize("dtype", INT_DTYPES)
@pytest.mark.parametrize("shape", [(), (0,), (7,), (3, 5), (2, 3, 4)])
def test_fill_any_integer_dtype_in_place(dtype: object, shape: tuple[int, ...]) -> None:
    out = np.zeros(shape, dtype=dtype)  # type: ignore[call-overload]
    address = out.ctypes.data
    result = AesCtrPrg(SEED).fill(out)
    assert result is out and out.ctypes.data == address and out.shape == shape
    assert out.tobytes() == reference(SEED, out.nbytes)


def test_fill_covers_full_signed_range() -> None:
    values = AesCtrPrg(SEED).fill(np.empty(20000, np.int8)).astype(np.int64)
    assert values.min() == -128 and values.max() == 127


@pytest.mark.parametrize(
    "bad",
    [
        np.zeros((4, 6), np.uint64)[:, ::2],  # strided view
        np.asfortranarray(np.zeros((4, 6), np.uint32)),  # Fortran order
        np.zeros(8, np.float64),
        np.zeros(8, np.bool_),
        np.zeros(8, np.complex128),
    ],
)
def test_fill_refuses_non_contiguous_and_non_integer(bad: np.ndarray) -> None:
    prg = AesCtrPrg(SEED)
    with pytest.raises(ParameterError):
        prg.fill(bad)
    assert prg.position == 0


def test_fill_refuses_read_only_and_non_arrays() -> None:
    frozen = np.zeros(8, np.uint64)
    frozen.setflags(write=False)
    with pytest.raises(ParameterError, match="writeable"):
        AesCtrPrg(SEED).fill(frozen)
    with pytest.raises(ParameterError, match="numpy array"):
        AesCtrPrg(SEED).fill(bytearray(8))  # type: ignore[arg-type]
    with pytest.raises(ParameterError, match="C-contiguous"):
        AesCtrPrg(SEED).fill(np.zeros((4, 4), np.uint8).T)


# --- typed draws --------------------------------------------------------------------------


def test_random_uint64_matches_little_endian_keystream() -> None:
    values = AesCtrPrg(SEED).random_uint64((4, 3))
    assert values.shape == (4, 3)
    expected = np.frombuffer(reference(SEED, 96), dtype="<u8").reshape(4, 3)
    np.testing.assert_array_equal(values, expected)


def test_random_uint64_into_preallocated_out() -> None:
    out = np.empty((5, 2), np.uint64)
    assert AesCtrPrg(SEED).random_uint64((5, 2), out=out) is out
    with pytest.raises(ShapeMismatchError):
        AesCtrPrg(SEED).random_uint64((10,), out=out)
    with pytest.raises(ParameterError):
        AesCtrPrg(SEED).random_uint64(4, out=np.empty(4, np.int64))  # type: ignore[arg-type]


@pytest.mark.parametrize("bits", [1, 2, 7, 31, 32, 33, 63, 64])
def test_random_bits_in_range_with_balanced_low_bits(bits: int) -> None:
    n = 40_000
    values = AesCtrPrg(SEED).random_bits(n, bits)
    assert values.dtype == np.uint64
    if bits < 64:
        assert int(values.max()) < 2**bits
    # Each kept bit is a fair coin: within 6 sigma of n/2 ones.
    for bit in {0, bits // 2, bits - 1}:
        ones = int(((values >> np.uint64(bit)) & np.uint64(1)).sum())
        assert abs(ones - n / 2) < 6 * math.sqrt(n / 4)


def test_random_bits_low_bits_are_the_uint64_low_bits() -> None:
    raw = AesCtrPrg(SEED).random_uint64(100)
    np.testing.assert_array_equal(AesCtrPrg(SEED).random_bits(100, 20), raw & np.uint64(2**20 - 1))


@pytest.mark.parametrize("bits", [0, 65, -1])
def test_random_bits_refuses_bad_widths(bits: int) -> None:
    with pytest.raises(ParameterError):
        AesCtrPrg(SEED).random_bits(3, bits)


def test_bytes_are_uniform_chi_square() -> None:
    counts = np.bincount(np.frombuffer(AesCtrPrg(SEED).bytes(1 << 20), np.uint8), minlength=256)
    assert chi2_stat(counts, (1 << 20) / 256) < chi2_upper(255)


@pytest.mark.parametrize("bound", [3, 7, 13, 255, 256])
def test_random_below_small_odd_bound_is_uniform(bound: int) -> None:
    n = 200_000
    values = AesCtrPrg(SEED).random_below(bound, n)
    assert values.dtype == np.uint64 and values.shape == (n,)
    counts = np.bincount(values.astype(np.int64), minlength=bound)
    assert counts.size == bound  # nothing at or above the bound
    assert chi2_stat(counts, n / bound) < chi2_upper(max(bound - 1, 5))


def test_random_below_has_no_modulo_bias_for_large_bound() -> None:
    # With bound = 3·2^62, reducing a 64-bit word mod bound would put half the mass in the
    # first third; rejection gives each third 1/3.
    bound = 3 * 2**62
    n = 60_000
    values = AesCtrPrg(SEED).random_below(bound, n)
    assert int(values.max()) < bound
    thirds = np.bincount((values // np.uint64(2**62)).astype(np.int64), minlength=3)
    assert thirds.size == 3
    assert chi2_stat(thirds, n / 3) < chi2_upper(5)


def test_random_below_edge_bounds_and_shapes() -> None:
    prg = AesCtrPrg(SEED)
    np.testing.assert_array_equal(prg.random_below(1, (2, 3)), np.zeros((2, 3), np.uint64))
    assert prg.random_below(5, (0, 4)).shape == (0, 4)
    assert prg.random_below(5, ()).shape == ()
    full = prg.random_below(2**64, 1000)
    assert int(full.max()) >= 2**63  # full range reached
    odd = prg.random_below(2**63 + 1, 1000)  # acceptance ≈ 1/2
    assert int(odd.max()) <= 2**63


def test_random_below_is_deterministic() -> None:
    a = AesCtrPrg(SEED).random_below(1_000_003, (50, 20))
    b = AesCtrPrg(SEED).random_below(1_000_003, (50, 20))
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("bound", [0, -5, 2**64 + 1])
def test_random_below_refuses_out_of_range_bounds(bound: int) -> None:
    with pytest.raises(ParameterError):
        AesCtrPrg(SEED).random_below(bound, 3)


def test_random_int_is_rejection_on_masked_big_endian_bytes() -> None:
    # Known answer from the same keystream, sampled by hand with Python ints.
    bound = 10**40 + 7
    bits = (bound - 1).bit_length()
    stream = reference(SEED, 4096)
    nbytes, offset = (bits + 7) // 8, 0
    expected: list[int] = []
    while len(expected) < 20:
        value = int.from_bytes(stream[offset : offset + nbytes], "big") & ((1 << bits) - 1)
        offset += nbytes
        if value < bound:
            expected.append(value)
    prg = AesCtrPrg(SEED)
    assert [prg.random_int(bound) for _ in range(20)] == expected
    assert prg.position == offset


@pytest.mark.parametrize("bound", [1, 2, 3, 256, 257, 2**64, 2**3072 - 1, 3**2000])
def test_random_int_range(bound: int) -> None:
    prg = AesCtrPrg(SEED)
    values = [prg.random_int(bound) for _ in range(50)]
    assert all(0 <= v < bound for v in values)
    if bound > 2**64:  # the top half of a huge range is reached
        assert max(values) > bound // 2


def test_random_int_small_bound_is_uniform() -> None:
    prg = AesCtrPrg(SEED)
    counts = np.bincount([prg.random_int(6) for _ in range(30_000)], minlength=6)
    assert counts.size == 6 and chi2_stat(counts, 5000) < chi2_upper(5)


def test_random_int_refuses_bad_bound() -> None:
    with pytest.raises(ParameterError):
        AesCtrPrg(SEED).random_int(0)
    with pytest.raises(ParameterError):
        AesCtrPrg(SEED).random_int(2.5)  # type: ignore[arg-type]


# --- construction and bookkeeping ---------------------------------------------------------


@pytest.mark.parametrize("seed", [b"", bytes(16), bytes(31), bytes(33), "0" * 32, None])
def test_bad_seeds_are_refused(seed: object) -> None:
    with pytest.raises(ParameterError):
        AesCtrPrg(seed)  # type: ignore[arg-type]


@pytest.mark.parametrize("stream", [-1, 2**64, 1.0])
def test_bad_stream_ids_are_refused(stream: object) -> None:
    with pytest.raises(ParameterError):
        AesCtrPrg(SEED, stream=stream)  # type: ignore[arg-type]


def test_bad_shapes_and_counts_are_refused() -> None:
    prg = AesCtrPrg(SEED)
    with pytest.raises(ParameterError):
        prg.random_uint64((2, -1))
    with pytest.raises(ParameterError):
        prg.random_uint64((2.0, 3))  # type: ignore[arg-type]
    with pytest.raises(ParameterError):
        prg.bytes(-1)
    assert prg.bytes(0) == b"" and prg.position == 0


def test_repr_hides_the_seed() -> None:
    prg = AesCtrPrg(SEED, stream=2)
    prg.bytes(3)
    text = repr(prg)
    assert text == "AesCtrPrg(stream=2, position=3)"
    assert SEED.hex() not in text and len(SEED) == SEED_BYTES


def test_stream_end_is_refused_not_wrapped() -> None:
    prg = AesCtrPrg(SEED)
    prg._position = MAX_STREAM_BYTES - 8
    with pytest.raises(ParameterError, match="exhausted"):
        prg.bytes(16)
    assert prg.bytes(8)  # the last 8 bytes are still available
