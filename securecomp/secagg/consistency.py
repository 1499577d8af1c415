"""Checks and certificates of the malicious-server mode (Bonawitz et al., CCS 2017, Fig. 4).

In the active model the server may forge, drop, alter or selectively forward anything it
relays. The client therefore trusts only what the clients themselves signed under their
pinned identity keys (`securecomp.secagg.identity`), over the canonical statements of
`securecomp.secagg.transcript`:

1. ShareKeys (`authenticate_key_list`): the key list must be the signed key transcript:
   ids ascending, its own advertisement unaltered, and a valid signature on every
   advertisement it will use (those of its neighbours in the round's graph, which is
   derived from the transcript's hash for SecAgg+). A substituted key would let the server
   decrypt the shares sealed for that neighbour, so one bad signature aborts. On a Harary
   graph the other entries are hashed but not verified: a forged entry that the derived
   graph makes a neighbour is verified (and caught) like any neighbour, and one that stays
   outside the neighbourhood only changes the hash, i.e. re-draws the graph, which the
   server can do anyway by choosing whose advertisements to include.
2. ConsistencyCheck (`check_survivors`): ``U3`` must be sorted, list this client, contain
   only clients of the transcript, and, within its neighbourhood, only clients that sent it
   shares (``U3 subset of U2``); ``|U3| >= t`` overall and in its neighbourhood.
3. Unmasking (`check_certificate`): before revealing anything, at least ``t`` valid
   signatures on *its own* ``U3`` (bound to its transcript) from clients of ``U3``; on a
   Harary graph, ``t`` from the closed neighbourhood of every client whose share it reveals
   (the holders of that client's shares), so the signers come from its second
   neighbourhood. Any invalid signature aborts: honest clients sign only the ``U3`` they
   were shown, so one that does not verify means the server showed different survivor sets
   to different clients (the split-view attack) or forged the certificate.

Why this suffices: an honest client signs one ``U3`` per round. If two honest holders of
``v``'s shares acted on different ``U3`` (one revealing ``b_v``, the other ``s_v^SK``),
both sets would carry ``t`` signatures from ``N[v]``; honest members sign one set and
corrupt ones both, so ``2t <= |N[v]| + corrupt(N[v])``, which the threshold rule of
`securecomp.secagg.parameters` excludes (``t > (n + n_C) / 2`` on the complete graph).

Every failure raises `ProtocolAbort` (or `InsufficientParticipantsError` for counts) naming
the culprits; the caller then wipes its secrets.

The server side (`verify_advertisement`, `certificate_signers`) is what the honest server
of this mode does: refuse advertisements that do not verify, and give each client the
signatures it needs (``t`` on the complete graph; its second neighbourhood's otherwise).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from itertools import pairwise

from securecomp.errors import (
    InsufficientParticipantsError,
    IntegrityError,
    MalformedMessageError,
    ProtocolAbort,
)
from securecomp.secagg.config import SecAggConfig
from securecomp.secagg.graph import CommunicationGraph
from securecomp.secagg.messages import AdvertiseKeys, KeysBroadcast
from securecomp.secagg.transcript import advertisement_message, transcript_hash

__all__ = [
    "authenticate_key_list",
    "certificate_signers",
    "check_certificate",
    "check_survivors",
    "second_neighbourhood",
    "verify_advertisement",
]


def second_neighbourhood(graph: CommunicationGraph, u: int) -> set[int]:
    """Clients within distance two of ``u`` (``u`` included): the holders of the shares of
    ``u``'s neighbours, i.e. the signers ``u`` may need."""
    out: set[int] = set()
    for v in graph.closed_neighbourhood(u):
        out.update(graph.closed_neighbourhood(v))
    return out


def verify_advertisement(
    config: SecAggConfig, *, round: int, model: bytes, msg: AdvertiseKeys
) -> None:
    """The server's check of a signed advertisement against ``model`` (its own digest).

    Raises
    ------
    MalformedMessageError
        Unsigned advertisement in a signed session.
    IntegrityError
        Signed for another model (model-hash mismatch), or the signature does not verify.
    """
    u = msg.header.sender
    if not msg.signed or config.identities is None or type(u) is not int:
        raise MalformedMessageError(
            f"client {u} sent an unsigned advertisement to a session that defends against a "
            "malicious server"
        )
    if msg.model_digest != model:
        raise IntegrityError(
            f"model-hash mismatch: client {u} signed its keys for model digest "
            f"{msg.model_digest[:8].hex()}..., not the {model[:8].hex()}... this server "
            "broadcast; it received another model: refused"
        )
    statement = advertisement_message(
        fingerprint=config.fingerprint,
        session=config.session,
        round=round,
        model=model,
        client=u,
        c_public=msg.c_public,
        s_public=msg.s_public,
    )
    config.identities.verify(u, statement, msg.signature)


def certificate_signers(
    graph: CommunicationGraph, threshold: int, signers: Sequence[int], recipient: int
) -> tuple[int, ...]:
    """Whose signatures on ``U3`` the server sends ``recipient``: ``t`` of them on the
    complete graph (more only cost verification time), else every signer of its second
    neighbourhood (the clients' check is per owner's neighbourhood)."""
    if graph.is_complete:
        return tuple(signers[:threshold])
    near = second_neighbourhood(graph, recipient)
    return tuple(v for v in signers if v in near)


def _ascending(ids: Sequence[int], n: int) -> bool:
    return all(b > a for a, b in pairwise(ids)) and (not ids or ids[-1] < n)


def authenticate_key_list(
    config: SecAggConfig,
    *,
    round: int,
    model: bytes,
    me: int,
    own: AdvertiseKeys,
    msg: KeysBroadcast,
    stage: str,
) -> tuple[bytes, CommunicationGraph, list[int]]:
    """Check the signed key transcript; return its hash, the round's graph and the indices
    of ``msg``'s entries in ``me``'s closed neighbourhood (``me`` included).

    Raises
    ------
    ProtocolAbort
        Unsigned or unsorted list, own advertisement missing or altered, or a neighbour's
        signature that does not verify (named as culprit).
    """
    identities = config.identities
    if identities is None or not msg.signatures:
        raise ProtocolAbort(stage, "the server sent an unsigned key list to a signed session")
    ids = msg.ids
    if not _ascending(ids, config.n):
        raise ProtocolAbort(stage, "the key transcript must list distinct client ids in order")
    try:
        mine = ids.index(me)
    except ValueError:
        raise ProtocolAbort(stage, "the key transcript omits this client") from None
    if (msg.c_publics[mine], msg.s_publics[mine], msg.signatures[mine]) != (
        own.c_public,
        own.s_public,
        own.signature,
    ):
        raise ProtocolAbort(stage, "the key transcript alters this client's advertisement")
    fp, session = config.fingerprint, config.session
    transcript = transcript_hash(
        fingerprint=fp,
        session=session,
        round=round,
        model=model,
        ids=ids,
        c_publics=msg.c_publics,
        s_publics=msg.s_publics,
        signatures=msg.signatures,
    )
    graph = config.round_graph(transcript)
    closed = frozenset(graph.closed_neighbourhood(me))
    keep = [i for i, v in enumerate(ids) if v in closed]
    for i in keep:
        v = ids[i]
        if v == me:
            continue
        statement = advertisement_message(
            fingerprint=fp,
            session=session,
            round=round,
            model=model,
            client=v,
            c_public=msg.c_publics[i],
            s_public=msg.s_publics[i],
        )
        try:
            identities.verify(v, statement, msg.signatures[i])
        except IntegrityError as exc:
            raise ProtocolAbort(
                stage,
                f"the key advertisement of client {v} does not verify under its pinned "
                "identity key in this session, round and model: the server substituted or "
                "altered it, or sent that client a different model (model-hash mismatch)",
                [v],
            ) from exc
    return transcript, graph, keep


def check_survivors(
    config: SecAggConfig,
    *,
    me: int,
    survivors: Sequence[int],
    transcript_ids: Collection[int],
    closed: Collection[int],
    sent_shares: Collection[int],
    stage: str,
) -> None:
    """The ConsistencyCheck rules on the announced ``U3`` (see the module docstring).

    Raises
    ------
    ProtocolAbort, InsufficientParticipantsError
    """
    t = config.threshold
    if not _ascending(survivors, config.n):
        raise ProtocolAbort(stage, "the survivor set must list distinct client ids in order")
    unknown = [v for v in survivors if v not in transcript_ids]
    if unknown:
        raise ProtocolAbort(
            stage, "the survivor set lists clients that never advertised keys", unknown[:20]
        )
    if me not in survivors:
        raise ProtocolAbort(stage, "the survivor set omits this client, which sent its input")
    local = [v for v in survivors if v in closed]
    not_u2 = [v for v in local if v != me and v not in sent_shares]
    if not_u2:
        raise ProtocolAbort(
            stage,
            "the survivor set U3 is not a subset of U2: it lists neighbours that never sent "
            "this client their shares",
            not_u2,
        )
    if len(survivors) < t or len(local) < t:
        raise InsufficientParticipantsError(
            stage,
            f"the survivor set has {len(survivors)} clients ({len(local)} in this client's "
            f"neighbourhood), fewer than the threshold {t}; this client signs nothing",
        )


def check_certificate(
    config: SecAggConfig,
    graph: CommunicationGraph,
    *,
    me: int,
    statement: bytes,
    survivors: Collection[int],
    signers: Sequence[int],
    signatures: Sequence[bytes],
    owners: Collection[int],
    stage: str,
) -> None:
    """Verify the certificate on this client's signed ``U3`` before it reveals shares of
    ``owners`` (see the module docstring).

    Raises
    ------
    ProtocolAbort
        Unsorted or ineligible signers, or a signature that does not verify.
    InsufficientParticipantsError
        Fewer than ``t`` valid signatures (in some owner's neighbourhood).
    """
    identities = config.identities
    if identities is None:  # pragma: no cover - a malicious-mode config always has them
        raise ProtocolAbort(stage, "no pinned identities to check the certificate against")
    t = config.threshold
    if not _ascending(signers, config.n):
        raise ProtocolAbort(stage, "the certificate must list distinct signers in order")
    outside = [v for v in signers if v not in survivors]
    if outside:
        raise ProtocolAbort(
            stage,
            "the certificate has signers outside the survivor set this client signed: the "
            "server showed different survivor sets to different clients (split view) or "
            "forged the certificate; nothing is revealed",
            outside[:20],
        )
    if not graph.is_complete:
        second = second_neighbourhood(graph, me)
        far = [v for v in signers if v not in second]
        if far:
            raise ProtocolAbort(
                stage, "the certificate has signers outside the second neighbourhood", far[:20]
            )
    for v, sig in zip(signers, signatures, strict=True):
        try:
            identities.verify(v, statement, sig)
        except IntegrityError as exc:
            raise ProtocolAbort(
                stage,
                f"client {v}'s signature does not verify on the survivor set this client "
                "signed: the server showed different survivor sets to different clients "
                "(split view) or forged the certificate; nothing is revealed",
                [v],
            ) from exc
    if graph.is_complete:
        short = [] if len(signers) >= t else sorted(owners)
    else:
        signed = frozenset(signers)
        short = [
            v for v in sorted(owners)
            if sum(w in signed for w in graph.closed_neighbourhood(v)) < t
        ]
    if short:
        raise InsufficientParticipantsError(
            stage,
            f"fewer than t = {t} clients signed this client's survivor set (among the holders "
            f"of the shares of clients {short[:20]}); nothing is revealed",
            short,
        )
