"""Reader policy: quiet hours in the reader's own time zone, and the daily cap.

Pure functions of a recipient, the alert and the clock, so every worker decides alike and the
tests can pin the clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from functools import lru_cache
from zoneinfo import ZoneInfo

from ..store.models import Recipient


class Action(Enum):
    SEND = "send"
    SKIP = "skip"
    DEFER = "defer"


@dataclass(frozen=True)
class Decision:
    action: Action
    reason: str = ""
    due_at: float | None = None  # with DEFER


SEND = Decision(Action.SEND)


@dataclass(frozen=True)
class AlertPolicy:
    respect_quiet_hours: bool
    expires_at: float  # an alert is not worth delivering after its TTL


@lru_cache(maxsize=1024)
def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ValueError, OSError):  # stored names were validated; be safe anyway
        return ZoneInfo("UTC")


def local_time(recipient: Recipient, now: float) -> datetime:
    return datetime.fromtimestamp(now, zone(recipient.timezone))


def local_day(recipient: Recipient, now: float) -> str:
    return local_time(recipient, now).date().isoformat()


def quiet_until(recipient: Recipient, now: float) -> float | None:
    """When the reader's quiet period ends, if `now` falls inside it; else None."""
    start, end = recipient.quiet_start, recipient.quiet_end
    if start is None or end is None:
        return None
    local = local_time(recipient, now)
    minute = local.hour * 60 + local.minute
    inside = start <= minute < end if start < end else (minute >= start or minute < end)
    if not inside:
        return None
    end_day = local.date()
    if start > end and minute >= start:  # the window wraps past midnight
        end_day += timedelta(days=1)
    wall = datetime(end_day.year, end_day.month, end_day.day, end // 60, end % 60)
    return wall.replace(tzinfo=local.tzinfo).timestamp()


def decide(recipient: Recipient, policy: AlertPolicy, now: float, sent_today: int = 0) -> Decision:
    if recipient.vapid_rejected:
        return Decision(Action.SKIP, "push service refused our VAPID key for this reader")
    if recipient.max_per_day is not None and sent_today >= recipient.max_per_day:
        return Decision(Action.SKIP, "daily cap reached")
    if policy.respect_quiet_hours:
        until = quiet_until(recipient, now)
        if until is not None:
            if until <= policy.expires_at:
                return Decision(Action.DEFER, "quiet hours", until)
            return Decision(Action.SKIP, "quiet hours outlast the alert's TTL")
    return SEND
