"""HE <-> MPC conversions inside a two-party MPC session (SPMD: both parties call them).

The two computing parties of a `securecomp.mpc.Session` play the roles of
`securecomp.hybrid.ckks` and `securecomp.hybrid.paillier`: the **key holder** (owner of
the HE secret key, e.g. a client) and the **evaluator** (holder of the ciphertext, e.g. a
server with private weights); ``evaluator=`` names the latter (party 1 by default).
Parameters, mask distributions, modulus budgets and precision of each direction are
stated in those modules and in `securecomp.hybrid.budget`.

=========================  ==============================  ===========  ==================
function                   evaluator passes                key holder   rounds, messages
=========================  ==============================  ===========  ==================
`ckks_to_shares`           the CKKS tensor                 ``key=``     1: ciphertext, seed
`paillier_to_shares`       the Paillier tensor             ``key=``     1: ciphertext, seed
`shares_to_ckks`           its share (both: ``context=``)  its share    2: masked share, ct
`shares_to_paillier`       its share (both: public key)    its share    2: masked share, ct
=========================  ==============================  ===========  ==================

HE -> shares returns a `SecureTensor` of the session's ``shares`` backend to both parties,
whose bound is the declared bound plus the conversion's error; the shares are refreshed
with a zero sharing from a 32-byte seed the evaluator sends along (so each party's share
is uniform in Z_2^64 on its own, as `securecomp.mpc.sharing.share` guarantees). Shares ->
HE returns the ciphertext to the evaluator and None to the key holder; the tensor's
tracked bound (`securecomp.mpc.bound_of`) sizes the re-sharing mask.

Threat model: two semi-honest parties. What the key holder learns (masked values,
statistical distance ``2^-sigma`` per value, and flooded errors, KL divergence ``2^-sigma``
over the conversions under the key) is recorded in the session's leakage ledger; the
evaluator learns ciphertexts and uniformly random shares. Messages are counted on the
session channel under ``hybrid.*`` tags.
"""

from __future__ import annotations

import secrets
from typing import Any

import numpy as np
import numpy.typing as npt

from securecomp.crypto import AesCtrPrg
from securecomp.errors import ParameterError
from securecomp.he.ckks import CKKSBackend, CKKSContext
from securecomp.he.ckks.payload import payload_of
from securecomp.he.paillier import PaillierBackend, PaillierPublicKey, PaillierSecretKey
from securecomp.hybrid import ckks as ck
from securecomp.hybrid import paillier as pl
from securecomp.hybrid.budget import ckks_flooding
from securecomp.hybrid.ring import ints_to_ring
from securecomp.mpc import bound_of
from securecomp.mpc.bounds import ring_bound
from securecomp.mpc.session import Session
from securecomp.params import STATISTICAL_SECURITY_BITS, check_statistical_security
from securecomp.tensor import SecureTensor

__all__ = ["ckks_to_shares", "paillier_to_shares", "shares_to_ckks", "shares_to_paillier"]

_TAG_CT = "hybrid.ciphertext"
_TAG_SEED = "hybrid.refresh"
_TAG_RESHARE = "hybrid.reshare"


def _roles(sess: Session, evaluator: int) -> bool:
    """Check the session and return whether this party is the evaluator."""
    if sess.n_parties != 2:
        raise ParameterError(
            f"HE <-> MPC conversion runs between two parties; the session has {sess.n_parties}"
        )
    if evaluator not in (0, 1):
        raise ParameterError(f"evaluator must be party 0 or 1, got {evaluator!r}")
    return sess.party_id == evaluator


def _send_bytes(sess: Session, data: bytes, tag: str) -> None:
    sess.send(1 - sess.party_id, np.frombuffer(data, dtype=np.uint8), tag=tag)


def _recv_bytes(sess: Session, tag: str) -> bytes:
    return sess.recv(1 - sess.party_id, tag=tag, dtype=np.uint8).tobytes()


def _refresh(
    share: npt.NDArray[np.uint64], seed: bytes, add: bool
) -> npt.NDArray[np.uint64]:
    """Add (evaluator) or subtract (key holder) the same pseudorandom zero sharing."""
    pad = AesCtrPrg(seed).random_uint64(share.shape)
    return np.add(share, pad) if add else np.subtract(share, pad)


def ckks_to_shares(
    sess: Session,
    tensor: SecureTensor | None = None,
    *,
    key: CKKSContext | None = None,
    bound: float,
    error_bound: float,
    n_conversions: int,
    evaluator: int = 1,
    sigma: int = STATISTICAL_SECURITY_BITS,
) -> SecureTensor:
    """Convert the evaluator's CKKS tensor into additive shares (one round).

    Parameters
    ----------
    sess : Session
    tensor : SecureTensor, optional
        The evaluator's CKKS tensor (None on the key holder).
    key : CKKSContext, optional
        The key holder's secret context (None on the evaluator).
    bound, error_bound, n_conversions, sigma
        Public parameters both parties pass identically (`securecomp.hybrid.ckks.mask_ckks`).
    evaluator : int
        The party holding the ciphertext (the other one holds the key).

    Returns
    -------
    SecureTensor
        This party's share, bound ``bound + precision`` (see `CKKSFlooding.precision`).
    """
    f = sess.frac_bits
    check_statistical_security(sigma, "sigma")  # both parties, before any message
    if _roles(sess, evaluator):
        if tensor is None or key is not None:
            raise ParameterError("the evaluator passes its CKKS tensor and no key")
        masked = ck.mask_ckks(
            tensor, bound=bound, error_bound=error_bound, n_conversions=n_conversions,
            frac_bits=f, sigma=sigma,
        )
        seed = secrets.token_bytes(32)
        ckks_backend = ck.ckks_backend(masked.tensor)
        _send_bytes(sess, ckks_backend.to_bytes(masked.tensor), _TAG_CT)
        _send_bytes(sess, seed, _TAG_SEED)
        share, flood = _refresh(masked.share, seed, add=True), masked.flooding
    else:
        if key is None or tensor is not None:
            raise ParameterError(
                "the key holder passes key= (its secret CKKS context) and no tensor: it "
                "receives the ciphertext"
            )
        ckks_backend = CKKSBackend(key)
        received = ckks_backend.from_bytes(_recv_bytes(sess, _TAG_CT))
        seed = _recv_bytes(sess, _TAG_SEED)
        p = payload_of(received)
        flood = ckks_flooding(
            ckks_backend.params, p.level, bound=bound, error_bound=error_bound,
            n_ciphertexts=len(p.cts), n_conversions=n_conversions, frac_bits=f, sigma=sigma,
            gain=p.gain,
        )
        share = _refresh(ck.unmask_ckks(received, key, frac_bits=f), seed, add=False)
    holder = 1 - evaluator
    sess.ledger.record(
        holder,
        f"CKKS values plus a {sigma}-bit-slack mask and flooding noise, shape {share.shape}",
        "ckks_to_shares",
    )
    return sess.backend.wrap(share, ring_bound(float(bound) + flood.precision, f))


def paillier_to_shares(
    sess: Session,
    tensor: SecureTensor | None = None,
    *,
    key: PaillierSecretKey | None = None,
    evaluator: int = 1,
    sigma: int = STATISTICAL_SECURITY_BITS,
) -> SecureTensor:
    """Convert the evaluator's (unpacked) Paillier tensor into additive shares (one round).

    The tensor's public bound and scale travel with it; the shares carry the bound
    ``2^(beta - s)`` (plus one ulp) at the session's ``frac_bits``.
    """
    f = sess.frac_bits
    s_bits = check_statistical_security(sigma, "sigma")
    if _roles(sess, evaluator):
        if tensor is None or key is not None:
            raise ParameterError("the evaluator passes its Paillier tensor and no key")
        masked = pl.mask_paillier(tensor, sigma=s_bits)
        seed = secrets.token_bytes(32)
        paillier = pl.paillier_backend(masked.tensor)
        _send_bytes(sess, paillier.to_bytes(masked.tensor), _TAG_CT)
        _send_bytes(sess, seed, _TAG_SEED)
        ints = [-v for v in pl.rescale_ints(masked.masks, masked.scale, f)]
        share = _refresh(ints_to_ring(ints, masked.tensor.shape), seed, add=True)
        meta: dict[str, Any] = dict(masked.tensor.meta)
    else:
        if key is None or tensor is not None:
            raise ParameterError(
                "the key holder passes key= (its Paillier secret key) and no tensor: it "
                "receives the ciphertext"
            )
        received = PaillierBackend(key.public_key).from_bytes(_recv_bytes(sess, _TAG_CT))
        seed = _recv_bytes(sess, _TAG_SEED)
        meta = dict(received.meta)
        ints = pl.rescale_ints(pl.unmask_paillier(received, key), int(meta["scale"]), f)
        share = _refresh(ints_to_ring(ints, received.shape), seed, add=False)
    beta = int(meta["bound_bits"]) - 2 - s_bits  # the masked tensor declares beta + 2 + sigma
    shift = beta - int(meta["scale"]) + f
    ring = (1 << shift) + 1 if shift >= 0 else 2
    sess.ledger.record(
        1 - evaluator,
        f"Paillier integers plus a {s_bits}-bit-slack integer mask, shape {share.shape}",
        "paillier_to_shares",
    )
    return sess.backend.wrap(share, ring)


def _reshare(
    sess: Session, x: SecureTensor, evaluator: int, sigma: int
) -> tuple[int, list[int] | None, npt.NDArray[np.int64] | None]:
    """Bounded re-sharing: the evaluator gets ``r``, the key holder ``X + r`` (one message)."""
    if sess.n_parties != 2 or x.backend is not sess.backend:
        raise ParameterError("shares -> HE converts a tensor of this two-party session")
    beta = bound_of(x).bit_length()
    if sess.party_id == evaluator:
        message, r = ck.reshare_mask(np.asarray(x.payload), beta, sigma=sigma)
        sess.send(1 - evaluator, message, tag=_TAG_RESHARE)
        return beta, r, None
    message = sess.recv(evaluator, tag=_TAG_RESHARE, shape=x.shape)
    sess.ledger.record(
        sess.party_id, f"re-shared values X + r ({sigma}-bit slack), shape {x.shape}", "reshare"
    )
    return beta, None, ck.reshare_open(np.asarray(x.payload), message)


def shares_to_ckks(
    sess: Session,
    x: SecureTensor,
    *,
    context: CKKSContext,
    evaluator: int = 1,
    layout: str | None = None,
    sigma: int = STATISTICAL_SECURITY_BITS,
) -> SecureTensor | None:
    """Convert shares into a CKKS tensor held by the evaluator (two messages).

    ``context`` is the key holder's secret context on the key holder, the public context
    on the evaluator. Returns the CKKS tensor on the evaluator, None on the key holder.
    """
    _roles(sess, evaluator)
    _, r, masked = _reshare(sess, x, evaluator, check_statistical_security(sigma, "sigma"))
    backend = CKKSBackend(context)
    f = sess.frac_bits
    if masked is not None:
        enc = ck.encrypt_masked(backend, masked, frac_bits=f, layout=layout)
        _send_bytes(sess, backend.to_bytes(enc), _TAG_CT)
        return None
    received = backend.from_bytes(_recv_bytes(sess, _TAG_CT))
    return ck.unmask_encrypted(received, r or [], frac_bits=f)


def shares_to_paillier(
    sess: Session,
    x: SecureTensor,
    *,
    public_key: PaillierPublicKey,
    evaluator: int = 1,
    sigma: int = STATISTICAL_SECURITY_BITS,
) -> SecureTensor | None:
    """Convert shares into an (unpacked) Paillier tensor held by the evaluator.

    Returns ``Enc(X)`` at scale ``frac_bits`` on the evaluator, None on the key holder.
    """
    _roles(sess, evaluator)
    s_bits = check_statistical_security(sigma, "sigma")
    beta, r, masked = _reshare(sess, x, evaluator, s_bits)
    backend = PaillierBackend(public_key)
    if masked is not None:
        enc = pl.encrypt_masked(backend, masked, frac_bits=sess.frac_bits, beta=beta, sigma=s_bits)
        _send_bytes(sess, backend.to_bytes(enc), _TAG_CT)
        return None
    received = backend.from_bytes(_recv_bytes(sess, _TAG_CT))
    return pl.unmask_encrypted(received, r or [], beta=beta)
