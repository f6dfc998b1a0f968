"""The notification payload: built and shortened once per alert, never per reader.

Every push service must accept a 4096-byte body. One aes128gcm record carries 86 bytes of
header, the plaintext, one delimiter byte and a 16-byte tag, so the plaintext may be at most
3993 bytes. When it is longer the body is shortened first, then the title, on character
boundaries with an ellipsis; a URL is never cut (a cut link is a broken story).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ..errors import PushdeskError
from .crypto import MAX_PLAINTEXT

ELLIPSIS = "…"


class PayloadTooLarge(PushdeskError, ValueError):
    """The fields that may not be shortened (URLs, ids) alone exceed the limit."""


@dataclass(frozen=True)
class Message:
    title: str
    url: str
    body: str | None = None
    icon: str | None = None
    image: str | None = None
    tag: str | None = None
    alert_id: str | None = None
    timestamp: int | None = None  # milliseconds since the epoch, as Notification wants

    def as_json(self) -> dict[str, Any]:
        fields = {
            "title": self.title,
            "body": self.body,
            "url": self.url,
            "icon": self.icon,
            "image": self.image,
            "tag": self.tag,
            "alertId": self.alert_id,
            "timestamp": self.timestamp,
        }
        return {k: v for k, v in fields.items() if v is not None}


def encode(fields: dict[str, Any]) -> bytes:
    return json.dumps(fields, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def build_payload(message: Message, limit: int = MAX_PLAINTEXT) -> bytes:
    """The JSON plaintext, shortened to fit `limit` bytes (body first, then title)."""
    fields = message.as_json()
    data = encode(fields)
    if len(data) <= limit:
        return data
    for name in ("body", "title"):
        if name not in fields:
            continue
        fields[name] = _shorten(fields, name, limit)
        data = encode(fields)
        if len(data) <= limit:
            return data
    raise PayloadTooLarge(
        f"the link and other fixed fields need {len(data)} bytes; at most {limit} fit"
    )


def _shorten(fields: dict[str, Any], name: str, limit: int) -> str:
    """The longest prefix of fields[name] (plus an ellipsis) that keeps the JSON within limit.

    A binary search over the number of characters kept: JSON escaping makes byte length a
    monotone but not linear function of it.
    """
    text: str = fields[name]

    def fits(keep: int) -> bool:
        candidate = dict(fields, **{name: _cut(text, keep)})
        return len(encode(candidate)) <= limit

    lo, hi = 0, len(text)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if fits(mid):
            lo = mid
        else:
            hi = mid - 1
    return _cut(text, lo)


def _cut(text: str, keep: int) -> str:
    if keep >= len(text):
        return text
    return text[:keep].rstrip() + ELLIPSIS
