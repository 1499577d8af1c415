"""What clients sign against a malicious server, and what is derived from it.

Bonawitz et al. (CCS 2017, Fig. 4, active model) have each client sign its key
advertisement in round 0 and the survivor set ``U3`` in the ConsistencyCheck round. The
byte strings signed here are canonical (fixed-width fields, length prefixes, a distinct
tag per kind of statement), so a signature made for one statement, session, round,
configuration or model never verifies as another:

* `advertisement_message`: client ``u``'s two X25519 public keys, bound to the session,
  round, configuration fingerprint (which covers the pinned identity keys) and the digest
  of the model the client received (`model_digest`). A server that broadcast different
  models to different clients is caught when their advertisements do not verify under
  each other's digest;
* `transcript_hash`: SHA-256 over every accepted advertisement with its signature, in id
  order (the *signed key transcript*). It seeds the SecAgg+ graph (`graph_seed`), so the
  server cannot choose who neighbours whom, and it is bound into the ConsistencyCheck
  signatures, so clients shown different transcripts never count each other's signatures;
* `survivors_message`: ``U3`` as a bitmap over the ``n`` clients, bound to the transcript.

Cost: to recompute the hash, every client receives the whole transcript (132 bytes per
advertiser: 66 kB at n = 500, 1.3 MB at n = 10,000), hashes it, and verifies the signatures
of its neighbours only (`securecomp.secagg.consistency`).

Residual influence of the server on the graph (stated, not removed): it decides which
advertisements enter the transcript, so it can re-draw the graph by trying different
subsets. Each try costs a hash and a permutation and yields an independent uniform graph,
so ``2^g`` tries multiply the per-graph failure bounds of `securecomp.secagg.parameters`
by at most ``2^g``; raise ``ThreatModel.security_bits`` by ``g`` to absorb a budget.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Sequence

import numpy as np

from securecomp.crypto.prg import SEED_BYTES
from securecomp.errors import ParameterError

__all__ = [
    "MODEL_DIGEST_BYTES",
    "advertisement_message",
    "graph_seed",
    "model_digest",
    "survivors_message",
    "transcript_hash",
]

MODEL_DIGEST_BYTES = 32
_MODEL_TAG = b"securecomp/secagg/model/v1"
_ADVERTISE_TAG = b"securecomp/secagg/advertise/v1"
_TRANSCRIPT_TAG = b"securecomp/secagg/key-transcript/v1"
_GRAPH_TAG = b"securecomp/secagg/graph-seed/v1"
_SURVIVORS_TAG = b"securecomp/secagg/survivors/v1"
_ID = struct.Struct(">I")


def _context(fingerprint: bytes, session: bytes, round: int) -> bytes:
    return len(session).to_bytes(1, "big") + session + round.to_bytes(8, "big") + fingerprint


def model_digest(model_hash: bytes) -> bytes:
    """32-byte digest of the caller's opaque model identifier (e.g. a model file's hash).

    Raises
    ------
    ParameterError
        ``model_hash`` is not non-empty bytes.
    """
    if not isinstance(model_hash, bytes) or not model_hash:
        raise ParameterError(
            "model_hash must be non-empty bytes identifying the broadcast model (e.g. the "
            "SHA-256 of its serialized weights)"
        )
    h = hashlib.sha256(_MODEL_TAG)
    h.update(len(model_hash).to_bytes(8, "big"))
    h.update(model_hash)
    return h.digest()


def advertisement_message(
    *,
    fingerprint: bytes,
    session: bytes,
    round: int,
    model: bytes,
    client: int,
    c_public: bytes,
    s_public: bytes,
) -> bytes:
    """The bytes client ``client`` signs in AdvertiseKeys (``model`` is its `model_digest`)."""
    return b"".join(
        (
            _ADVERTISE_TAG,
            _context(fingerprint, session, round),
            model,
            _ID.pack(client),
            c_public,
            s_public,
        )
    )


def transcript_hash(
    *,
    fingerprint: bytes,
    session: bytes,
    round: int,
    model: bytes,
    ids: Sequence[int],
    c_publics: Sequence[bytes],
    s_publics: Sequence[bytes],
    signatures: Sequence[bytes],
) -> bytes:
    """SHA-256 of the signed key transcript (entries in the order given: ids ascending).

    Fixed-width entries (id, 32 + 32 key bytes, 64 signature bytes) behind a count make
    the encoding injective.
    """
    h = hashlib.sha256(_TRANSCRIPT_TAG)
    h.update(_context(fingerprint, session, round))
    h.update(model)
    h.update(_ID.pack(len(ids)))
    h.update(
        b"".join(
            _ID.pack(u) + c + s + sig
            for u, c, s, sig in zip(ids, c_publics, s_publics, signatures, strict=True)
        )
    )
    return h.digest()


def graph_seed(transcript: bytes) -> bytes:
    """The 32-byte label-permutation seed of the SecAgg+ graph of this round."""
    return hashlib.sha256(_GRAPH_TAG + transcript).digest()[:SEED_BYTES]


def survivors_message(
    *,
    fingerprint: bytes,
    session: bytes,
    round: int,
    transcript: bytes,
    n: int,
    survivors: Sequence[int],
) -> bytes:
    """The bytes every client of ``U3`` signs in the ConsistencyCheck round.

    Raises
    ------
    ParameterError
        A survivor id outside ``0 .. n-1``.
    """
    ids = np.asarray(survivors, dtype=np.int64)
    if ids.size and (int(ids.min()) < 0 or int(ids.max()) >= n):
        raise ParameterError(f"survivor ids must lie in 0..{n - 1}")
    bitmap = np.zeros(n, dtype=bool)
    bitmap[ids] = True
    return b"".join(
        (
            _SURVIVORS_TAG,
            _context(fingerprint, session, round),
            transcript,
            _ID.pack(n),
            np.packbits(bitmap, bitorder="little").tobytes(),
        )
    )
