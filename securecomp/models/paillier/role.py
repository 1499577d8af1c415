"""What every role of the Paillier model protocol has: a name, sealed links and a ledger.

A role is an object that turns received message bytes into message bytes to send; it owns
no transport. Drivers (`securecomp.models.paillier.driver`) move the bytes, in one process
(a simulation of the roles) or over `securecomp.net` channels between threads or
processes. Each role generates its own X25519 key pair; the public halves, with a session
id, form the session configuration (`connect_roles`), from which every pair of roles
derives the key of its sealed `Link`.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from securecomp.crypto.x25519 import X25519KeyPair
from securecomp.errors import ParameterError
from securecomp.models.paillier.messages import Link
from securecomp.net.report import LeakageLedger

__all__ = ["AGGREGATOR", "KEY_HOLDER", "Role", "connect_roles", "holder_name", "new_session_id"]

#: Role names, used as envelope sender and recipient.
KEY_HOLDER = "key_holder"
AGGREGATOR = "aggregator"


def holder_name(index: int) -> str:
    """The role name of data holder ``index``."""
    return f"holder_{index}"


def new_session_id() -> bytes:
    """A fresh 16-byte session id from the OS CSPRNG."""
    return secrets.token_bytes(16)


class Role:
    """Base of the protocol roles.

    Attributes
    ----------
    name : str
        Role name (envelope sender / recipient).
    links : dict of str to Link
        Sealed links to the other roles, after `connect`.
    ledger : LeakageLedger
        Where the role records what it learns beyond its output.
    seconds : float
        Wall-clock seconds spent in this role's handlers (its compute, sealing included).
    """

    def __init__(self, name: str, ledger: LeakageLedger | None = None) -> None:
        self.name = name
        self._x25519 = X25519KeyPair.generate()
        self.links: dict[str, Link] = {}
        self.ledger = ledger if ledger is not None else LeakageLedger()
        self.seconds = 0.0

    @property
    def x25519_public(self) -> bytes:
        """This role's X25519 public key, for the session configuration."""
        return self._x25519.public_bytes

    def connect(self, session: bytes, directory: Mapping[str, bytes]) -> None:
        """Derive the sealed links to every other role named in ``directory``."""
        if directory.get(self.name) != self.x25519_public:
            raise ParameterError(
                f"the session directory does not list {self.name!r} with this role's key"
            )
        self.links = {
            peer: Link(self._x25519, self.name, peer, public, session)
            for peer, public in directory.items()
            if peer != self.name
        }

    def link(self, peer: str) -> Link:
        """The link to ``peer``; `ParameterError` before `connect` or for an unknown role."""
        try:
            return self.links[peer]
        except KeyError:
            raise ParameterError(
                f"{self.name!r} has no link to {peer!r}: connect the roles first "
                "(securecomp.models.paillier.connect_roles)"
            ) from None

    @contextmanager
    def _busy(self) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds += time.perf_counter() - start

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


def connect_roles(*roles: Role, session: bytes | None = None) -> bytes:
    """Give every role the same session configuration; returns the session id.

    In a deployment the directory of X25519 public keys is distributed out of band (as the
    pinned certificates of `securecomp.net.tls`); here it is built from the role objects.
    """
    names = [r.name for r in roles]
    if len(set(names)) != len(names):
        raise ParameterError(f"role names must be distinct, got {names}")
    sid = new_session_id() if session is None else session
    directory = {r.name: r.x25519_public for r in roles}
    for r in roles:
        r.connect(sid, directory)
    return sid
