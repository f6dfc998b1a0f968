"""Plain data the store hands out. No behaviour that needs I/O lives here."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class QuietHours:
    """Local wall-clock window, in minutes after midnight; may wrap past midnight."""

    start: int
    end: int

    def as_json(self) -> dict[str, str]:
        return {"start": _hhmm(self.start), "end": _hhmm(self.end)}


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


# Preference fields a reader may change; the store takes a dict with any subset of these keys.
PREFERENCE_FIELDS = ("topics", "timezone", "quiet_hours", "max_per_day", "language")


@dataclass
class Subscription:
    id: int
    public_id: str
    endpoint: str
    p256dh: bytes
    auth: bytes
    vapid_key_id: str
    topics: list[str]
    timezone: str
    quiet_hours: QuietHours | None
    max_per_day: int | None
    language: str | None
    created_at: float
    updated_at: float

    def preferences_json(self) -> dict[str, Any]:
        return {
            "id": self.public_id,
            "topics": sorted(self.topics),
            "timezone": self.timezone,
            "quietHours": self.quiet_hours.as_json() if self.quiet_hours else None,
            "maxPerDay": self.max_per_day,
            "language": self.language,
        }


@dataclass(frozen=True)
class NewSubscription:
    """What a browser handed us, already validated and decoded."""

    endpoint: str
    p256dh: bytes
    auth: bytes
    vapid_key_id: str
    token_hash: bytes
    preferences: dict[str, Any] = field(default_factory=dict)
    default_topics: tuple[str, ...] = ()  # used when a new reader names no topics


@dataclass(frozen=True)
class VapidKeyRecord:
    id: str
    public_key: str
    status: str  # active | retiring | retired
    created_at: float
