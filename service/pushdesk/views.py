"""JSON views of the store's records: the wire format of the API and of the export, kept apart
from the database models (camelCase keys, ISO times, derived figures such as the click rate),
so a change of column never changes what clients read, and the reverse."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from .store.models import Alert, QuietHours, Subscription


def quiet_hours_json(quiet: QuietHours | None) -> dict[str, str] | None:
    if quiet is None:
        return None
    return {"start": hhmm(quiet.start), "end": hhmm(quiet.end)}


def hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def preferences_json(sub: Subscription) -> dict[str, Any]:
    """A reader as the browser's widget and the export see them (no keys, no token)."""
    return {
        "id": sub.public_id,
        "topics": sorted(sub.topics),
        "timezone": sub.timezone,
        "quietHours": quiet_hours_json(sub.quiet_hours),
        "maxPerDay": sub.max_per_day,
        "language": sub.language,
    }


def alert_json(alert: Alert) -> dict[str, Any]:
    """An alert as editors read it: its message, status, counts and click rate."""
    counts = alert.counts
    data: dict[str, Any] = {
        "id": alert.public_id,
        "title": alert.title,
        "url": alert.url,
        "body": alert.body,
        "icon": alert.icon,
        "image": alert.image,
        "topics": alert.topics,
        "ttl": alert.ttl,
        "urgency": alert.urgency,
        "respectQuietHours": alert.respect_quiet_hours,
        "status": alert.status,
        "counts": dict(counts),
        "clickRate": round(counts["clicked"] / counts["delivered"], 4)
        if counts.get("delivered")
        else None,
        "createdAt": iso_time(alert.created_at),
        "startedAt": iso_time(alert.started_at),
        "finishedAt": iso_time(alert.finished_at),
        "editor": alert.editor,
    }
    if alert.error:
        data["error"] = alert.error
    return data


def iso_time(ts: float | None) -> str | None:
    """RFC 3339 in UTC with milliseconds, as `2026-11-25T17:00:00.000Z`."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
