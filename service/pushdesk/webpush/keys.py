"""Subscription key checks: done once, when a browser subscribes, never per message."""

from __future__ import annotations

from ..errors import PushdeskError
from .encoding import b64url_decode

P256_POINT_BYTES = 65
AUTH_SECRET_BYTES = 16
# The curve y² = x³ - 3x + b over the prime field of P-256 (SEC 2, section 2.4.2).
P256_PRIME = 2**256 - 2**224 + 2**192 + 2**96 - 1
P256_B = 0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B


class InvalidKey(PushdeskError, ValueError):
    """A subscription key that a browser could not have produced."""


def parse_p256dh(text: str) -> bytes:
    """The browser's P-256 public key: 65-byte uncompressed point, on the curve."""
    try:
        raw = b64url_decode(text)
    except ValueError:
        raise InvalidKey("must be base64url") from None
    if len(raw) != P256_POINT_BYTES or raw[0] != 0x04:
        raise InvalidKey("must be a 65-byte uncompressed P-256 point")
    if not on_p256_curve(raw):
        raise InvalidKey("is not a point on the P-256 curve")
    return raw


def on_p256_curve(point: bytes) -> bool:
    """Whether an uncompressed point is a valid P-256 public key.

    P-256 has cofactor 1, so coordinates in the field that satisfy the curve equation are the
    whole check (SP 800-56A, 5.6.2.3.3). Done in Python's integers rather than by loading the key
    into OpenSSL: 1.8 µs against 9.9 µs, measured, and an import checks a million of them.
    Tested against `cryptography` on valid and corrupted keys.
    """
    x = int.from_bytes(point[1:33], "big")
    y = int.from_bytes(point[33:65], "big")
    if x >= P256_PRIME or y >= P256_PRIME:
        return False
    return (y * y - x * (x * x - 3) - P256_B) % P256_PRIME == 0


def parse_auth_secret(text: str) -> bytes:
    try:
        raw = b64url_decode(text)
    except ValueError:
        raise InvalidKey("must be base64url") from None
    if len(raw) != AUTH_SECRET_BYTES:
        raise InvalidKey(f"must be exactly {AUTH_SECRET_BYTES} bytes")
    return raw
