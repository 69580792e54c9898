"""Studio mode (`limner serve --studio`): one backend shared by a studio's retouchers over
the network. Opt-in; the default backend stays on loopback with the discovery file's token.

What makes it safe to listen beyond loopback, in one place:
- TLS only: the studio's certificate, or a self-signed pair made on first run, whose
  SHA-256 fingerprint the server prints so the plug-ins can pin it.
- Per-user tokens (`limner users add NAME [--admin]`): shown once, stored as a salted
  scrypt hash. A token is `ID.SECRET`: the ID finds the user without comparing against
  every hash, and an unknown ID is hashed all the same, so a wrong token costs the same
  whoever asks. A wrong token gets one answer after one delay; repeated failures from one
  address wait longer, doubling up to a limit.
- Per-user limits (jobs queued or running, bytes of pixels held for them), checked by the
  server before a run's pixels are taken; the job queue serves users in turn.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import ipaddress
import json
import re
import secrets
import socket
import ssl
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import discovery, protocol

#: where the users and the self-signed pair are kept, inside the state folder
USERS_FILE, CERT_FILE, KEY_FILE = "studio-users.json", "studio-cert.pem", "studio-key.pem"
#: scrypt's cost (about 50 ms a check here): a token is 256 random bits, so this guards
#: the stored hashes of a leaked users file rather than the tokens themselves
SCRYPT = {"n": 2**14, "r": 8, "p": 1, "dklen": 32}
#: a wrong token's answer comes this long after its hello, whoever asks
FAILED_AUTH_SECONDS = 1.0
#: each further failure from one address doubles its wait, up to this, and the count is
#: forgotten after this long without a failure
SLOWEST_SECONDS, FORGET_FAILURES_SECONDS = 30.0, 900.0
#: per-user limits by default: jobs queued or running, and pixels held for them
DEFAULT_JOBS_PER_USER, DEFAULT_BYTES_PER_USER = 4, 1 << 30
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")


@dataclass(frozen=True)
class User:
    name: str
    admin: bool = False


class Users:
    """The studio's users, in an owner-only file of the state folder. The server reads it
    at every hello, so `users add` and `users remove` take effect for the next connection
    without a restart."""

    def __init__(self, directory: Path | None = None):
        self.path = discovery.state_dir_of(directory) / USERS_FILE

    def _read(self) -> list[dict]:
        try:
            users = json.loads(self.path.read_text()).get("users", [])
        except FileNotFoundError:
            return []
        except (OSError, ValueError, AttributeError) as exc:
            raise ValueError(f"cannot read the studio's users from {self.path}: {exc}") \
                from None
        return [u for u in users if isinstance(u, dict)]

    def _write(self, users: list[dict]) -> None:
        discovery.write_private(self.path, {"users": users})

    def add(self, name: str, admin: bool = False) -> str:
        """A new user; returns their token (shown once: only its hash is kept)."""
        if not NAME.fullmatch(name):
            raise ValueError(f"a user name is 1 to 64 letters, digits and . _ @ -, "
                             f"not {protocol.shown(name)}")
        users = self._read()
        if any(u.get("name") == name for u in users):
            raise ValueError(f"there is already a user {name!r}; remove them first to give "
                             "them a new token")
        ident, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
        salt = secrets.token_bytes(16)
        users.append({"name": name, "id": ident, "admin": bool(admin), "salt": salt.hex(),
                      "hash": _hash(secret, salt).hex(),
                      "created": datetime.datetime.now(datetime.timezone.utc)
                      .strftime("%Y-%m-%dT%H:%M:%SZ")})
        self._write(users)
        return f"{ident}.{secret}"

    def remove(self, name: str) -> bool:
        users = self._read()
        kept = [u for u in users if u.get("name") != name]
        if len(kept) == len(users):
            return False
        self._write(kept)
        return True

    def listed(self) -> list[dict]:
        """Name, admin and creation time of each user (never the hashes)."""
        return [{"name": u.get("name"), "admin": bool(u.get("admin")),
                 "created": u.get("created", "")} for u in self._read()]

    def check(self, token: str) -> User | None:
        """The user this token is, or None; as slow for a wrong ID as for a wrong secret."""
        ident, _, secret = token.partition(".")
        found = next((u for u in self._read() if hmac.compare_digest(
            str(u.get("id", "")).encode(), ident.encode("utf-8", "surrogatepass"))), None)
        salt = bytes.fromhex(found["salt"]) if found else b"\0" * 16
        digest = _hash(secret, salt)
        if found is None or not hmac.compare_digest(digest, bytes.fromhex(found["hash"])):
            return None
        return User(found["name"], bool(found.get("admin")))


def _hash(secret: str, salt: bytes) -> bytes:
    return hashlib.scrypt(secret.encode("utf-8", "surrogatepass"), salt=salt, **SCRYPT)


class Doorman:
    """How long a failed hello waits before its answer, per address: FAILED_AUTH_SECONDS
    after it arrived for everyone, doubled for each earlier failure from that address
    (up to SLOWEST_SECONDS); forgotten after FORGET_FAILURES_SECONDS without one."""

    def __init__(self):
        self.failures: dict[str, tuple[int, float]] = {}

    def failed(self, address: str) -> float:
        """Record a failure; the seconds its answer waits (from the hello's arrival)."""
        now = time.monotonic()
        count, last = self.failures.get(address, (0, now))
        if now - last > FORGET_FAILURES_SECONDS:
            count = 0
        self.failures[address] = (count + 1, now)
        for stale in [a for a, (_, t) in self.failures.items()
                      if now - t > FORGET_FAILURES_SECONDS]:
            del self.failures[stale]
        return min(SLOWEST_SECONDS, FAILED_AUTH_SECONDS * 2 ** count)


@dataclass
class Studio:
    """What `limner serve --studio` adds to a server: TLS, the users, the doorman, the
    per-user limits, and Ray Serve's engine replicas with --ray."""

    tls: ssl.SSLContext
    fingerprint: str
    users: Users
    jobs_per_user: int = DEFAULT_JOBS_PER_USER
    bytes_per_user: int = DEFAULT_BYTES_PER_USER
    doorman: Doorman = field(default_factory=Doorman)
    #: where jobs run past this machine (replicas.RayEngines), None: here
    engines: object | None = None


def certificate(directory: Path | None, hosts: list[str]) -> tuple[Path, Path]:
    """The self-signed pair in the state folder, made on first run for `hosts` (names and
    addresses the studio reaches this machine by) and kept: the plug-ins pin it."""
    folder = discovery.private_dir(discovery.state_dir_of(directory))
    cert, key = folder / CERT_FILE, folder / KEY_FILE
    if cert.exists() and key.exists():
        return cert, key
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    private = ec.generate_private_key(ec.SECP256R1())
    names = []
    for host in dict.fromkeys([*hosts, socket.gethostname(), "localhost"]):
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Limner studio")])
    now = datetime.datetime.now(datetime.timezone.utc)
    built = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
             .public_key(private.public_key()).serial_number(x509.random_serial_number())
             .not_valid_before(now - datetime.timedelta(days=1))
             .not_valid_after(now + datetime.timedelta(days=3650))
             .add_extension(x509.SubjectAlternativeName(names), critical=False)
             .sign(private, hashes.SHA256()))
    discovery.write_private_bytes(key, private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    discovery.write_private_bytes(cert, built.public_bytes(serialization.Encoding.PEM))
    return cert, key


def tls_context(cert: Path, key: Path) -> tuple[ssl.SSLContext, str]:
    """A server context (TLS 1.2 at least) for the pair, and the certificate's SHA-256
    fingerprint as the plug-ins pin it."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise ValueError(f"cannot use the certificate {cert} with the key {key}: {exc}") \
            from None
    der = ssl.PEM_cert_to_DER_cert(Path(cert).read_text().split("-----END CERTIFICATE-----")[0]
                                   + "-----END CERTIFICATE-----\n")
    return context, protocol.fingerprint(der)
