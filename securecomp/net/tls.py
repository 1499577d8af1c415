"""Mutual TLS between parties, with per-party certificates pinned by fingerprint.

MPC links carry shares and seeds, so a non-loopback link is always mutually authenticated
and encrypted (DESIGN.md §4). There is no certificate authority: each party has its own
self-signed ECDSA P-256 certificate (X.509, RFC 5280; subject CN and SAN name the party),
and every party's session configuration pins the exact certificate of every other party.

Verification, on both sides of each link (TLS 1.3, RFC 8446):

1. OpenSSL verifies the peer's certificate chain against the pinned certificates only
   (``verify_mode = CERT_REQUIRED`` on client and server; hostname checks are off because
   parties are identified by id, not DNS names).
2. After the handshake the peer claims a party id in its first frame; its certificate's
   SHA-256 fingerprint must equal the one pinned for that id, so a party cannot pose as
   another even though all pinned certificates are trusted in step 1.

Any failure raises `PeerAuthenticationError`.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import os
import secrets
import ssl
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from securecomp.errors import ParameterError, PeerAuthenticationError

__all__ = [
    "PartyCredentials",
    "TLSConfig",
    "certificate_fingerprint",
    "generate_party_credentials",
    "make_test_tls_configs",
]


def _load_cert(pem: bytes, what: str) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(pem)
    except (ValueError, TypeError) as exc:
        raise ParameterError(f"{what} is not a PEM X.509 certificate: {exc}") from None


def certificate_fingerprint(cert_pem: bytes) -> str:
    """SHA-256 fingerprint (hex) of the DER encoding of a PEM certificate."""
    der = _load_cert(cert_pem, "certificate").public_bytes(serialization.Encoding.DER)
    return hashlib.sha256(der).hexdigest()


def party_name(party_id: int) -> str:
    """Subject name used in the certificate of a party."""
    return f"securecomp-party-{party_id}"


@dataclass(frozen=True)
class PartyCredentials:
    """A party's certificate (public, pinned by the others) and its private key (secret)."""

    party: int
    cert_pem: bytes
    key_pem: bytes = field(repr=False)

    @property
    def fingerprint(self) -> str:
        return certificate_fingerprint(self.cert_pem)


def generate_party_credentials(party_id: int, *, valid_days: int = 30) -> PartyCredentials:
    """Create a fresh ECDSA P-256 key and a self-signed certificate naming ``party_id``.

    The key comes from OpenSSL's CSPRNG. Distribute ``cert_pem`` (or its fingerprint's
    certificate) to every other party; keep ``key_pem`` on this party only.
    """
    if type(party_id) is not int or party_id < 0:
        raise ParameterError(f"party id must be a non-negative int, got {party_id!r}")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, party_name(party_id))])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))  # tolerate clock skew
        .not_valid_after(now + datetime.timedelta(days=valid_days))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName(party_name(party_id))]), critical=False
        )
        # Not a CA: a party's key must not be able to vouch for other certificates.
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return PartyCredentials(
        party=party_id,
        cert_pem=cert.public_bytes(serialization.Encoding.PEM),
        key_pem=key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )


@dataclass(frozen=True)
class TLSConfig:
    """One party's TLS material: its own certificate and key, and the pinned peers.

    Parameters
    ----------
    own_cert : bytes
        This party's PEM certificate.
    own_key : bytes
        Its PEM (PKCS#8, unencrypted) private key. Never printed.
    pinned : mapping of party id to PEM certificate
        The exact certificate of every peer. (Certificates, not bare fingerprints, because
        Python's ``ssl`` can only request a client certificate when it has a trust store;
        the identity check itself compares SHA-256 fingerprints.)
    """

    own_cert: bytes
    own_key: bytes = field(repr=False)
    pinned: Mapping[int, bytes] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _load_cert(self.own_cert, "own_cert")
        try:
            serialization.load_pem_private_key(self.own_key, password=None)
        except (ValueError, TypeError) as exc:
            raise ParameterError(f"own_key is not an unencrypted PEM private key: {exc}") from None
        if not self.pinned:
            raise ParameterError("TLSConfig.pinned is empty: pin the certificate of every peer")
        for pid, pem in self.pinned.items():
            _load_cert(pem, f"pinned certificate of party {pid}")

    def fingerprint_of(self, party: int) -> bytes:
        """Pinned SHA-256 fingerprint (raw bytes) of ``party``."""
        if party not in self.pinned:
            raise PeerAuthenticationError(
                f"no certificate is pinned for party {party}; add it to TLSConfig.pinned"
            )
        return bytes.fromhex(certificate_fingerprint(self.pinned[party]))

    def _context(self, server: bool) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER if server else ssl.PROTOCOL_TLS_CLIENT)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        if not server:
            ctx.check_hostname = False  # identity is the pinned fingerprint, not a DNS name
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(cadata=b"".join(self.pinned.values()).decode("ascii"))
        # load_cert_chain only reads files: write the key encrypted under a one-time
        # password into a private temporary directory, so it never rests on disk in clear.
        password = secrets.token_hex(32).encode()
        key = serialization.load_pem_private_key(self.own_key, password=None)
        enc = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(password),
        )
        with tempfile.TemporaryDirectory(prefix="securecomp-tls-") as d:
            cert_path, key_path = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
            for path, data in ((cert_path, self.own_cert), (key_path, enc)):
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
            ctx.load_cert_chain(cert_path, key_path, password=password)
        return ctx

    def server_context(self) -> ssl.SSLContext:
        """Context for accepting connections (requires and verifies a client certificate)."""
        return self._context(server=True)

    def client_context(self) -> ssl.SSLContext:
        """Context for connecting (verifies the server certificate against the pins)."""
        return self._context(server=False)

    def check_peer(self, sock: ssl.SSLSocket, party: int) -> None:
        """Require that ``sock``'s peer presented exactly the certificate pinned for ``party``.

        Raises
        ------
        PeerAuthenticationError
        """
        der = sock.getpeercert(binary_form=True)
        want = self.fingerprint_of(party)
        if der is None or not hmac.compare_digest(hashlib.sha256(der).digest(), want):
            raise PeerAuthenticationError(
                f"the peer claiming to be party {party} presented a certificate other than "
                "the one pinned for it; refusing the connection"
            )


def make_test_tls_configs(n: int, *, valid_days: int = 1) -> list[TLSConfig]:
    """Fresh credentials for ``n`` parties, each config pinning all the others (for tests)."""
    creds = [generate_party_credentials(i, valid_days=valid_days) for i in range(n)]
    return [
        TLSConfig(
            own_cert=c.cert_pem,
            own_key=c.key_pem,
            pinned={o.party: o.cert_pem for o in creds if o.party != c.party},
        )
        for c in creds
    ]
