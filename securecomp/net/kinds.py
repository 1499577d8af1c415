"""Registry of envelope kinds: what a `securecomp.net.wire.Envelope` may declare to carry.

Decoding rejects any kind nobody registered (DESIGN.md §5), so a message can never be
routed to a parser that does not expect it. The base set covers the payloads of this
package's layers; each protocol module registers its own at import
(``KIND = register_kind("mpc.share")``), and a namespace can be registered at once
(``"secagg.*"``).
"""

from __future__ import annotations

import re
import threading
from typing import Final

from securecomp.errors import ParameterError

__all__ = ["MAX_KIND_LEN", "is_registered_kind", "register_kind", "registered_kinds"]

#: Longest kind name, in characters (names are ASCII).
MAX_KIND_LEN: Final = 64

_KIND_RE = re.compile(r"[a-z][a-z0-9_]*(\.[a-z0-9_]+)*(\.\*)?")
_kinds: set[str] = set()
_kind_prefixes: set[str] = set()
_kinds_lock = threading.Lock()


def register_kind(name: str) -> str:
    """Register an envelope kind so that envelopes of this kind decode.

    Parameters
    ----------
    name : str
        Dotted lower-case name such as ``"ckks.ciphertext"``. A trailing ``".*"``
        (``"secagg.*"``) registers a whole namespace: every ``"secagg.<name>"`` decodes.

    Returns
    -------
    str
        ``name``, so modules can write ``KIND = register_kind("mpc.share")``.
        Registering a name twice is harmless.
    """
    if not isinstance(name, str) or len(name) > MAX_KIND_LEN or not _KIND_RE.fullmatch(name):
        raise ParameterError(
            f"invalid envelope kind {name!r}: use a dotted lower-case name of at most "
            f"{MAX_KIND_LEN} characters, e.g. 'mpc.share' or 'secagg.*'"
        )
    with _kinds_lock:
        if name.endswith(".*"):
            _kind_prefixes.add(name[:-1])
        else:
            _kinds.add(name)
    return name


def is_registered_kind(name: str) -> bool:
    """Whether envelopes of kind ``name`` are accepted by the decoder."""
    with _kinds_lock:
        if name in _kinds:
            return True
        return any(name.startswith(p) and len(name) > len(p) for p in _kind_prefixes)


def registered_kinds() -> tuple[str, ...]:
    """All registered kinds (namespaces shown with their ``.*``), sorted."""
    with _kinds_lock:
        return tuple(sorted(_kinds | {p + "*" for p in _kind_prefixes}))


for _k in (
    "bytes",
    "array",
    "arrays",
    "bigints",
    "ckks.context",
    "ckks.ciphertext",
    "paillier.public_key",
    "paillier.ciphertext",
    "mpc.share",
    "mpc.seed",
    "secagg.*",
):
    register_kind(_k)
