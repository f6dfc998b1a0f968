"""What a push service's answer means, and what to do about it.

Only 404 and 410 mean the reader is gone. 401/403 mean our VAPID signature or key was refused
(a mistake of ours, or a subscription bound to another key): the subscription is marked, never
deleted, or one VAPID slip would wipe every Safari reader. 429, 406 (WNS throttling) and 5xx
are retried after Retry-After or a backoff, slowing that push-service origin only.
"""

from __future__ import annotations

import email.utils
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

MAX_RETRY_AFTER = 3600.0


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
    slow_origin: bool = False  # the whole push-service origin should wait


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
        return Verdict(Result.RETRY, reason, retry_after, slow_origin=True)
    if status >= 500:
        return Verdict(Result.RETRY, reason, retry_after, slow_origin=retry_after is not None)
    if 300 <= status < 400:
        return Verdict(Result.REJECTED, f"HTTP {status} redirect (not followed)")
    return Verdict(Result.REJECTED, reason)


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait, from delta-seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return min(float(value), MAX_RETRY_AFTER)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None or when.tzinfo is None:
        return None
    delta = when.timestamp() - (time.time() if now is None else now)
    return min(max(delta, 0.0), MAX_RETRY_AFTER)


def service_reason(body: bytes) -> str:
    """The service's own words: Mozilla `message`/`error`, Apple `reason`, FCM plain text."""
    text = body[:1024].decode("utf-8", "replace").strip()
    if not text:
        return ""
    try:
        data = json.loads(text)
    except ValueError:
        return text[:200]
    if isinstance(data, dict):
        for key in ("reason", "message", "error"):
            if isinstance(data.get(key), str) and data[key]:
                errno = data.get("errno")
                return f"{data[key]} (errno {errno})" if errno is not None else data[key]
    return text[:200]
