"""Column lists and row converters shared by the SQLite and PostgreSQL stores."""

from __future__ import annotations

import functools
import hmac
import itertools
import json
import re
from dataclasses import dataclass
from typing import Any

from .models import (
    COUNT_FIELDS,
    Alert,
    AlertStatus,
    Keep,
    NewSubscription,
    Preferences,
    QuietHours,
    ReaderOutcome,
    ReaderResult,
    Recipient,
    Subscription,
)

SUBSCRIPTION_COLUMNS = (
    "id, public_id, endpoint, p256dh, auth, vapid_key_id, timezone, quiet_start, quiet_end, "
    "max_per_day, language, created_at, updated_at"
)
ALERT_COLUMNS = (
    "id, public_id, title, url, body, icon, image, topics, ttl, urgency, respect_quiet_hours, "
    "editor, status, created_at, started_at, finished_at, error, first_response, "
    + ", ".join(COUNT_FIELDS)
)
RECIPIENT_COLUMNS = (
    "id, endpoint, p256dh, auth, vapid_key_id, timezone, quiet_start, quiet_end, max_per_day, "
    "vapid_rejected_at"
)


def subscription_from_row(row: Any, topics: list[str]) -> Subscription:
    quiet = QuietHours(row[7], row[8]) if row[7] is not None and row[8] is not None else None
    return Subscription(
        id=row[0],
        public_id=row[1],
        endpoint=row[2],
        p256dh=bytes(row[3]),
        auth=bytes(row[4]),
        vapid_key_id=row[5],
        topics=topics,
        timezone=row[6],
        quiet_hours=quiet,
        max_per_day=row[9],
        language=row[10],
        created_at=row[11],
        updated_at=row[12],
    )


def alert_from_row(row: Any) -> Alert:
    counts = dict(zip(COUNT_FIELDS, row[18:], strict=True))
    return Alert(
        id=row[0],
        public_id=row[1],
        title=row[2],
        url=row[3],
        body=row[4],
        icon=row[5],
        image=row[6],
        topics=json.loads(row[7]),
        ttl=row[8],
        urgency=row[9],
        respect_quiet_hours=bool(row[10]),
        editor=row[11],
        status=AlertStatus(row[12]),
        created_at=row[13],
        started_at=row[14],
        finished_at=row[15],
        error=row[16],
        first_response=json.loads(row[17]) if row[17] else None,
        counts=counts,
    )


def recipient_from_row(row: Any) -> Recipient:
    return Recipient(
        id=row[0],
        endpoint=row[1],
        p256dh=bytes(row[2]),
        auth=bytes(row[3]),
        vapid_key_id=row[4],
        timezone=row[5],
        quiet_start=row[6],
        quiet_end=row[7],
        max_per_day=row[8],
        vapid_rejected=row[9] is not None,
    )


@functools.lru_cache(maxsize=512)
def numbered(sql: str) -> str:
    """A statement written once with SQLite's `?` placeholders, as PostgreSQL's `$1, $2, ...`
    (our statements hold no `?` of their own)."""
    count = itertools.count(1)
    return re.sub(r"\?", lambda _: f"${next(count)}", sql)


@dataclass(frozen=True)
class Write:
    """One statement for both stores (written with `?`), with the rows it runs for."""

    sql: str
    rows: list[tuple[Any, ...]]


def preference_writes(sub_id: int, prefs: Preferences, now: float) -> list[Write]:
    """What a preference change writes: the columns given, and the topics when given."""
    columns: dict[str, Any] = {}
    if not isinstance(prefs.timezone, Keep):
        columns["timezone"] = prefs.timezone
    if not isinstance(prefs.quiet_hours, Keep):
        quiet = prefs.quiet_hours
        columns["quiet_start"] = quiet.start if quiet else None
        columns["quiet_end"] = quiet.end if quiet else None
    if not isinstance(prefs.max_per_day, Keep):
        columns["max_per_day"] = prefs.max_per_day
    if not isinstance(prefs.language, Keep):
        columns["language"] = prefs.language
    writes = []
    if columns:
        assignments = ", ".join(f"{name}=?" for name in columns)
        writes.append(
            Write(
                f"UPDATE subscriptions SET {assignments}, updated_at=? WHERE id=?",
                [(*columns.values(), now, sub_id)],
            )
        )
    if not isinstance(prefs.topics, Keep):
        writes.append(Write("DELETE FROM subscription_topics WHERE subscription_id=?", [(sub_id,)]))
        writes.append(
            Write(
                "INSERT INTO subscription_topics (topic, subscription_id) VALUES (?, ?)",
                [(topic, sub_id) for topic in sorted(set(prefs.topics))],
            )
        )
    return [w for w in writes if w.rows]


# An alert may be cancelled while anything of it is still to come: `done` and `failed` alerts
# may still hold deferred deliveries (quiet hours, retries), which a cancel drops.
CANCELLABLE = (AlertStatus.QUEUED, AlertStatus.SENDING, AlertStatus.DONE, AlertStatus.FAILED)


def cancelled_status(status: str, dropped: int) -> AlertStatus:
    """An alert's status after a cancel that dropped `dropped` pending deliveries: a finished
    alert with nothing left to stop keeps its status."""
    if status in (AlertStatus.DONE, AlertStatus.FAILED) and not dropped:
        return AlertStatus(status)
    return AlertStatus.CANCELLED


def may_take_over(
    stored_keys: tuple[bytes, bytes],
    stored_token_hash: bytes,
    new: NewSubscription,
    proof: bytes | None,
) -> bool:
    """Whether a subscribe naming an endpoint that is already a reader's may refresh it.

    The same keys are the same browser coming back. Other keys for a known endpoint would
    send that reader's alerts to whoever made them: only the holder of the reader's token
    (the hash of the one this request presented, `proof`) may do that.
    """
    if (bytes(stored_keys[0]), bytes(stored_keys[1])) == (new.p256dh, new.auth):
        return True
    return proof is not None and hmac.compare_digest(proof, bytes(stored_token_hash))


# The columns an imported reader's row fills, in the order `import_row` gives them.
IMPORT_COLUMNS = (
    "id",
    "public_id",
    "endpoint",
    "p256dh",
    "auth",
    "vapid_key_id",
    "timezone",
    "quiet_start",
    "quiet_end",
    "max_per_day",
    "language",
    "token_hash",
    "created_at",
    "updated_at",
)


def import_row(
    sub_id: int, public_id: str, item: NewSubscription, now: float
) -> tuple[tuple[Any, ...], list[tuple[str, int]]]:
    """A new reader as both stores load it: its subscriptions row (IMPORT_COLUMNS) and its
    (topic, id) rows; the catalogue's default topics when the reader named none."""
    prefs = item.preferences
    quiet = None if isinstance(prefs.quiet_hours, Keep) else prefs.quiet_hours
    row = (
        sub_id,
        public_id,
        item.endpoint,
        item.p256dh,
        item.auth,
        item.vapid_key_id,
        "UTC" if isinstance(prefs.timezone, Keep) else prefs.timezone,
        quiet.start if quiet else None,
        quiet.end if quiet else None,
        None if isinstance(prefs.max_per_day, Keep) else prefs.max_per_day,
        None if isinstance(prefs.language, Keep) else prefs.language,
        item.token_hash,
        now,
        now,
    )
    topics = prefs.topics_or(item.default_topics)
    return row, [(topic, sub_id) for topic in sorted(set(topics))]


def encode_topics(topics: list[str]) -> str:
    """An alert's topics as its `topics` column holds them (and the duplicate guard compares)."""
    return json.dumps(sorted(topics))


def command_count(status: str) -> int:
    """The row count in a command status asyncpg returns ('UPDATE 1', 'DELETE 3')."""
    return int(status.rsplit(" ", 1)[-1])


FAILURE_RESULTS = (ReaderResult.FAILED, ReaderResult.REJECTED, ReaderResult.TOO_LARGE)


def sort_outcomes(
    outcomes: list[ReaderOutcome], now: float
) -> tuple[list[int], list[tuple[str, float, int]], list[tuple[str, int]]]:
    """(gone ids to delete, (reason, now, id) to mark VAPID-rejected, (reason, id) failures)."""
    gone = [o.subscription_id for o in outcomes if o.result is ReaderResult.GONE]
    rejected = [
        (o.reason, now, o.subscription_id)
        for o in outcomes
        if o.result is ReaderResult.VAPID_REJECTED
    ]
    failed = [(o.reason, o.subscription_id) for o in outcomes if o.result in FAILURE_RESULTS]
    return gone, rejected, failed
