"""What a push service's answer means, and what to do about it.

Only 404 and 410 mean the reader is gone. 401/403 mean our VAPID signature or key was refused
(a mistake of ours, or a subscription bound to another key): the subscription is marked, never
deleted, or one VAPID slip would wipe every Safari reader. 429, 406 (WNS throttling) and 5xx
are retried for that reader after Retry-After or a backoff; the origin as a whole waits
only when most of its recent answers are trouble (`breaker.py`).
"""

from __future__ import annotations

import email.utils
import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

MAX_RETRY_AFTER = 3600.0
# delta-seconds (RFC 9110 10.2.3) in ASCII digits only: `str.isdigit()` also accepts '²' and
# other digits that float() refuses. Longer than 10 digits is past any cap anyway.
DELTA_SECONDS = re.compile(r"[0-9]{1,10}", re.ASCII)
MAX_HTTP_DATE = 64  # an IMF-fixdate is 29 characters; anything far longer is not one


class Result(StrEnum):
    DELIVERED = "delivered"  # 201/202: accepted by the push service
    GONE = "gone"  # 404/410: delete the subscription
    VAPID_REJECTED = "vapid_rejected"  # 401/403: mark the subscription, do not retry
    TOO_LARGE = "too_large"  # 413: our bug; recorded against the alert
    REJECTED = "rejected"  # 400 and other 4xx: malformed request, never retried unchanged
    RETRY = "retry"  # 429/406/5xx/network: try again later
    FAILED = "failed"  # retries exhausted or the message's TTL passed


@dataclass(frozen=True)
class Verdict:
    result: Result
    reason: str
    retry_after: float | None = None
    throttled: bool = False  # the service asked us to slow down (its breaker weighs it)


# The answers that mean delivered, each with its one verdict: made once, not per message.
DELIVERED = {status: Verdict(Result.DELIVERED, f"HTTP {status}") for status in (201, 202, 200, 204)}


def classify(status: int, headers: Mapping[str, str], body: bytes) -> Verdict:
    """`headers` should be case-insensitive: `retry-after` counts too. (A caller whose headers
    cost something to build can look the status up in DELIVERED first.)"""
    delivered = DELIVERED.get(status)
    if delivered is not None:
        return delivered
    reason = service_reason(body) or f"HTTP {status}"
    retry_after = parse_retry_after(headers.get("Retry-After"))
    if status in (404, 410):
        return Verdict(Result.GONE, reason)
    if status in (401, 403):
        return Verdict(Result.VAPID_REJECTED, reason)
    if status == 413:
        return Verdict(Result.TOO_LARGE, reason)
    if status in (429, 406):
        return Verdict(Result.RETRY, reason, retry_after, throttled=True)
    if status >= 500:
        return Verdict(Result.RETRY, reason, retry_after, throttled=retry_after is not None)
    if 300 <= status < 400:
        return Verdict(Result.REJECTED, f"HTTP {status} redirect (not followed)")
    return Verdict(Result.REJECTED, reason)


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait, from delta-seconds or an HTTP date; None when absent or unreadable.

    A push service's header is outside input: whatever it holds, this returns, never raises.
    """
    if not value:
        return None
    value = value.strip()
    if DELTA_SECONDS.fullmatch(value):
        return min(float(value), MAX_RETRY_AFTER)
    if len(value) > MAX_HTTP_DATE:
        return None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when is None or when.tzinfo is None:
        return None
    delta = when.timestamp() - (time.time() if now is None else now)
    return min(max(delta, 0.0), MAX_RETRY_AFTER)


def service_reason(body: bytes) -> str:
    """The service's own words: Mozilla `message`/`error`, Apple `reason`, FCM plain text.

    Only the first kilobyte is read, and JSON nested past Python's recursion limit (a hostile
    body) counts as plain text rather than raising out of the batch.
    """
    text = body[:1024].decode("utf-8", "replace").strip()
    if not text:
        return ""
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        return _printable(text[:200])
    if isinstance(data, dict):
        for key in ("reason", "message", "error"):
            if isinstance(data.get(key), str) and data[key]:
                errno = data.get("errno")
                reason = f"{data[key]} (errno {errno})" if errno is not None else data[key]
                return _printable(reason[:200])
    return _printable(text[:200])


def _printable(text: str) -> str:
    """A reason goes into logs and the API: no control characters from the push service."""
    return "".join(ch if ch.isprintable() else " " for ch in text)
