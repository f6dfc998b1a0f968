"""Subscription key checks: done once, when a browser subscribes, never per message."""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric import ec

from .encoding import b64url_decode

P256_POINT_BYTES = 65
AUTH_SECRET_BYTES = 16


class InvalidKey(ValueError):
    """A subscription key that a browser could not have produced."""


def parse_p256dh(text: str) -> bytes:
    """The browser's P-256 public key: 65-byte uncompressed point, on the curve."""
    try:
        raw = b64url_decode(text)
    except ValueError:
        raise InvalidKey("must be base64url") from None
    if len(raw) != P256_POINT_BYTES or raw[0] != 0x04:
        raise InvalidKey("must be a 65-byte uncompressed P-256 point")
    try:
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), raw)
    except ValueError:
        raise InvalidKey("is not a point on the P-256 curve") from None
    return raw


def parse_auth_secret(text: str) -> bytes:
    try:
        raw = b64url_decode(text)
    except ValueError:
        raise InvalidKey("must be base64url") from None
    if len(raw) != AUTH_SECRET_BYTES:
        raise InvalidKey(f"must be exactly {AUTH_SECRET_BYTES} bytes")
    return raw
