"""VAPID (RFC 8292): the key files, and one signed token per push-service origin.

pywebpush signs a new JWT for every message and writes `aud` into the caller's claims dict.
Here py_vapid signs once per (key, origin) and the header is reused until shortly before it
expires; push services cache the verification, and Apple asks for no more than one refresh an
hour.
"""

from __future__ import annotations

import functools
import hashlib
import os
import stat
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid02, VapidException

from ..errors import PushdeskError
from .encoding import b64url_encode

TOKEN_LIFETIME = 12 * 3600
REFRESH_MARGIN = 3600  # re-sign when less than this is left


class VapidKeyError(PushdeskError):
    """A key file that is missing, unreadable, or readable by others."""


class UnsignableClaim(PushdeskError, ValueError):
    """py_vapid refuses to sign this audience or subject: no reader could be sent to with it."""


@functools.cache
def _probe_signer() -> Vapid02:
    probe = Vapid02()
    probe.private_key = ec.generate_private_key(ec.SECP256R1())
    return probe


def _sign_problem(claims: dict[str, object]) -> str | None:
    try:
        _probe_signer().sign(claims)
    except VapidException as exc:
        return str(exc) or "refused by the VAPID signer"
    return None


@functools.lru_cache(maxsize=1024)
def audience_problem(audience: str) -> str | None:
    """Why the signer would refuse `audience` (an endpoint's origin), or None.

    The signer's own rule, found by signing once with a throwaway key: an endpoint checked
    with it at the door can never make a reader's signature fail in the middle of an alert
    (an empty port or an IPv6 literal did). Cached: readers share a few push services.
    """
    if _sign_problem({"aud": audience, "exp": 1, "sub": "mailto:probe@example.com"}):
        return "has no VAPID audience a push service accepts (host name or IPv4, digits port)"
    return None


def subject_problem(subject: str) -> str | None:
    """Why the signer would refuse `subject` (PUSHDESK_VAPID_SUBJECT), or None."""
    if _sign_problem({"aud": "https://push.example.com", "exp": 1, "sub": subject}):
        return (
            "the VAPID signer refuses it: use mailto:you@example.com or https://host.example "
            "(no path)"
        )
    return None


def public_key_b64(private_key: ec.EllipticCurvePrivateKey) -> str:
    """The 65-byte uncompressed point, base64url: what `applicationServerKey` takes."""
    raw = private_key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return b64url_encode(raw)


def key_id_for(public_key: str) -> str:
    """A short stable id derived from the public key, used to name files and tag subscribers."""
    return hashlib.sha256(public_key.encode("ascii")).hexdigest()[:12]


def generate_key_file(keys_dir: Path) -> tuple[str, str]:
    """Create a new P-256 key as `<id>.pem` with mode 0600; returns (key id, public key)."""
    private_key = ec.generate_private_key(ec.SECP256R1())
    public = public_key_b64(private_key)
    key_id = key_id_for(public)
    keys_dir.mkdir(parents=True, exist_ok=True)
    pem = private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(keys_dir / f"{key_id}.pem", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    return key_id, public


def load_key_file(keys_dir: Path, key_id: str) -> ec.EllipticCurvePrivateKey:
    """Load `<id>.pem`, refusing files that others can read (the key signs as the newsroom)."""
    path = keys_dir / f"{key_id}.pem"
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise VapidKeyError(f"VAPID key file {path} is missing") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise VapidKeyError(
            f"VAPID key file {path} is readable by others (mode {stat.S_IMODE(mode):o}); "
            f"run: chmod 600 {path}"
        )
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise VapidKeyError(f"VAPID key file {path} cannot be loaded: {exc}") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise VapidKeyError(f"VAPID key file {path} is not a P-256 key")
    if key_id_for(public_key_b64(key)) != key_id:
        raise VapidKeyError(f"VAPID key file {path} does not hold the key named {key_id}")
    return key


def origin_of(endpoint: str) -> str:
    """The JWT audience: scheme, host and non-default port, no path.

    On the per-message path, so it slices instead of parsing: endpoints were validated as
    absolute http(s) URLs without credentials when the reader subscribed.
    """
    slash = endpoint.find("/", endpoint.find("://") + 3)
    origin = endpoint if slash < 0 else endpoint[:slash]
    return origin.split("?", 1)[0].split("#", 1)[0].lower()


@dataclass
class _Token:
    header: str
    expires: float


class VapidSigner:
    """Signs for one VAPID key; caches one Authorization header per audience."""

    def __init__(self, key_id: str, private_key: ec.EllipticCurvePrivateKey, subject: str):
        self.key_id = key_id
        self.public_key = public_key_b64(private_key)
        self.subject = subject
        self._vapid = Vapid02()
        self._vapid.private_key = private_key
        self._tokens: dict[str, _Token] = {}
        self.signatures = 0  # how many JWTs this signer made; tests and metrics read it

    def authorization(self, audience: str, now: float | None = None) -> str:
        """The `Authorization` header for `audience`; UnsignableClaim if py_vapid refuses it."""
        now = time.time() if now is None else now
        token = self._tokens.get(audience)
        if token is None or token.expires - now < REFRESH_MARGIN:
            expires = int(now) + TOKEN_LIFETIME
            claims = {"aud": audience, "exp": expires, "sub": self.subject}
            try:
                header = self._vapid.sign(claims)["Authorization"]
            except VapidException as exc:
                raise UnsignableClaim(f"VAPID signer refused {audience!r}: {exc}") from None
            token = _Token(header, expires)
            self._tokens[audience] = token
            self.signatures += 1
        return token.header

    def warm_up(self) -> None:
        """Sign once and throw it away: py_vapid imports and compiles what it needs on its
        first signature (about 10 ms), which should not happen in front of a reader."""
        self._vapid.sign({"aud": "https://warm-up.invalid", "exp": 0, "sub": self.subject})


class KeyRing:
    """Every usable VAPID key of this service, by id, plus which one new readers get."""

    def __init__(self, signers: dict[str, VapidSigner], active_id: str):
        self.signers = signers
        self.active_id = active_id

    @property
    def active(self) -> VapidSigner:
        return self.signers[self.active_id]

    def signer(self, key_id: str) -> VapidSigner | None:
        return self.signers.get(key_id)
