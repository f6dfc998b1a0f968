"""The writes both stores make alike, written once with `?` placeholders.

A store supplies `_writing()`: a transaction, as a `Writer` that runs statements written with
`?` (PostgreSQL's numbers them, `rows.numbered`). What locks differently (claiming shards and due
deliveries, checkpoints, cancels, planning) stays in each store; the statements those write
with, where they are the same, are here too (`write_outcomes`, `add_counts`, ...).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

from .models import (
    COUNT_FIELDS,
    Checkpoint,
    Count,
    NewSubscription,
    Preferences,
    ReaderOutcome,
    Settlement,
    Shard,
)
from .rows import preference_writes, sort_outcomes


class Writer(Protocol):
    """One transaction's statements, written with `?` placeholders."""

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one statement; the number of rows it changed."""
        ...

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None: ...

    async def value(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """The first column of the first row, or None."""
        ...


class SharedWrites:
    UNIQUE_VIOLATION: tuple[type[BaseException], ...] = ()  # the driver's duplicate-key error

    def _writing(self) -> AbstractAsyncContextManager[Writer]:
        raise NotImplementedError

    async def add_vapid_key(self, key_id: str, public_key: str, status: str) -> None:
        async with self._writing() as w:
            if status == "active":  # one active key: the one before it keeps signing, retiring
                await w.execute("UPDATE vapid_keys SET status='retiring' WHERE status='active'")
            await w.execute(
                "INSERT INTO vapid_keys (id, public_key, status, created_at) VALUES (?, ?, ?, ?)",
                (key_id, public_key, status, time.time()),
            )

    async def set_vapid_key_status(self, key_id: str, status: str) -> bool:
        async with self._writing() as w:
            return (
                await w.execute("UPDATE vapid_keys SET status=? WHERE id=?", (status, key_id)) == 1
            )

    async def add_editor(self, name: str, key_hash: bytes) -> bool:
        try:
            async with self._writing() as w:
                await w.execute(
                    "INSERT INTO editors (name, key_hash, created_at) VALUES (?, ?, ?)",
                    (name, key_hash, time.time()),
                )
        except self.UNIQUE_VIOLATION:
            return False
        return True

    async def revoke_editor(self, name: str) -> bool:
        async with self._writing() as w:
            changed = await w.execute(
                "UPDATE editors SET revoked_at=? WHERE name=? AND revoked_at IS NULL",
                (time.time(), name),
            )
        return changed == 1

    async def complete_creation(
        self, alert_id: int, audience: int, first_response: dict[str, Any] | None
    ) -> None:
        saved = json.dumps(first_response) if first_response is not None else None
        async with self._writing() as w:
            await w.execute(
                "UPDATE alerts SET first_response = COALESCE(?, first_response), "
                "audience = CASE WHEN finished_at IS NULL THEN ? ELSE audience END WHERE id=?",
                (saved, audience, alert_id),
            )

    async def release_shard(self, shard: Shard, owner: str) -> None:
        async with self._writing() as w:
            await w.execute(
                "UPDATE alert_shards SET state='queued', lease_owner=NULL, lease_expires=NULL "
                "WHERE id=? AND lease_owner=? AND state='claimed'",
                (shard.id, owner),
            )

    async def delete_subscription(self, public_id: str) -> bool:
        async with self._writing() as w:
            sub_id = await w.value("SELECT id FROM subscriptions WHERE public_id=?", (public_id,))
            if sub_id is None:
                return False
            await delete_subscriptions(w, [sub_id])
            return True

    async def record_outcomes(self, outcomes: list[ReaderOutcome]) -> None:
        if outcomes:
            async with self._writing() as w:
                await write_outcomes(w, outcomes, time.time())


async def apply_preferences(w: Writer, sub_id: int, prefs: Preferences, now: float) -> None:
    """A preference change: the columns it names, and the topics when it names them."""
    for write in preference_writes(sub_id, prefs, now):
        await w.executemany(write.sql, write.rows)


async def refresh_subscription(w: Writer, sub_id: int, item: NewSubscription, now: float) -> None:
    """A known endpoint subscribing again: new keys and token, a VAPID refusal or failure
    forgotten, and the preferences it names."""
    await w.execute(
        "UPDATE subscriptions SET p256dh=?, auth=?, vapid_key_id=?, token_hash=?, "
        "updated_at=?, vapid_rejected_at=NULL, last_failure=NULL WHERE id=?",
        (item.p256dh, item.auth, item.vapid_key_id, item.token_hash, now, sub_id),
    )
    await apply_preferences(w, sub_id, item.preferences, now)


async def write_batch(w: Writer, cp: Checkpoint, now: float) -> None:
    """One batch's rows: readers' outcomes, deferrals (with the attempts made), daily counts,
    delivery times and the alert's counters. (The cursor and lease are the store's: they
    lock differently.)"""
    await write_outcomes(w, cp.outcomes, now)
    if cp.deferrals:
        await w.executemany(
            "INSERT INTO deliveries_deferred (alert_id, subscription_id, due_at, reason, "
            "attempts) VALUES (?, ?, ?, ?, ?) ON CONFLICT (alert_id, subscription_id) DO "
            "UPDATE SET due_at=excluded.due_at, reason=excluded.reason, "
            "attempts=excluded.attempts, lease_owner=NULL, lease_expires=NULL",
            [(cp.alert_id, *deferral) for deferral in cp.deferrals],
        )
    await count_days(w, cp.daily)
    await count_delivery_times(w, cp.alert_id, cp.delivery_ms)
    await add_counts(w, cp.alert_id, cp.counts, cp.error)


async def settle_due(w: Writer, owner: str, settlements: list[Settlement], now: float) -> None:
    """Results of due deliveries `owner` holds: each leaves `deferred` for its final count,
    or is rescheduled with its attempts. One no longer held (cancelled, its reader deleted,
    taken over) is passed over."""
    for item in settlements:
        held = await w.execute(
            "DELETE FROM deliveries_deferred WHERE alert_id=? AND subscription_id=? "
            "AND lease_owner=?",
            (item.alert_id, item.subscription_id, owner),
        )
        if held != 1:
            continue
        if item.count is Count.DEFERRED:
            await w.execute(
                "INSERT INTO deliveries_deferred (alert_id, subscription_id, due_at, reason, "
                "attempts) VALUES (?, ?, ?, ?, ?)",
                (
                    item.alert_id,
                    item.subscription_id,
                    item.due_at,
                    "retry" if item.attempts else "quiet_hours",
                    item.attempts,
                ),
            )
            continue
        if item.day:
            await count_days(w, [(item.subscription_id, item.day)])
        await add_counts(w, item.alert_id, item.counts, None)
        if item.bucket_ms is not None:
            await count_delivery_times(w, item.alert_id, {item.bucket_ms: 1})
        if item.outcome:
            await write_outcomes(w, [item.outcome], now)


async def write_outcomes(w: Writer, outcomes: list[ReaderOutcome], now: float) -> None:
    """Gone readers deleted, VAPID-refused ones marked, other failures noted."""
    gone, rejected, failed = sort_outcomes(outcomes, now)
    if gone:
        await delete_subscriptions(w, gone)
    if rejected:
        await w.executemany(
            "UPDATE subscriptions SET last_failure=?, vapid_rejected_at=? WHERE id=?", rejected
        )
    if failed:
        await w.executemany("UPDATE subscriptions SET last_failure=? WHERE id=?", failed)


async def delete_subscriptions(w: Writer, ids: list[int]) -> None:
    """Delete readers; deliveries still deferred for them count as skipped, so counts add up.
    (At most a batch of ids at a time: one placeholder each.)"""
    marks = ", ".join("?" * len(ids))
    await w.execute(
        "UPDATE alerts SET deferred = deferred - n.c, skipped = skipped + n.c FROM "
        "(SELECT alert_id, COUNT(*) AS c FROM deliveries_deferred "
        f"WHERE subscription_id IN ({marks}) GROUP BY alert_id) AS n WHERE alerts.id = n.alert_id",
        ids,
    )
    await w.execute(f"DELETE FROM subscriptions WHERE id IN ({marks})", ids)


async def add_counts(w: Writer, alert_id: int, counts: dict[Count, int], error: str | None) -> None:
    """Add to an alert's counters (and keep its first error)."""
    changes = {k: v for k, v in counts.items() if v and k in COUNT_FIELDS}
    if not changes and not error:
        return
    sets = [f"{name} = {name} + ?" for name in changes]
    params: list[Any] = list(changes.values())
    if error:
        sets.append("error = COALESCE(error, ?)")
        params.append(error)
    await w.execute(f"UPDATE alerts SET {', '.join(sets)} WHERE id=?", (*params, alert_id))


async def count_delivery_times(w: Writer, alert_id: int, buckets: dict[int, int]) -> None:
    """Deliveries by time since the alert was created (percentiles and the timeline)."""
    if buckets:
        await w.executemany(
            "INSERT INTO delivery_times (alert_id, bucket_ms, count) VALUES (?, ?, ?) "
            "ON CONFLICT (alert_id, bucket_ms) DO UPDATE "
            "SET count = delivery_times.count + excluded.count",
            [(alert_id, bucket, count) for bucket, count in buckets.items()],
        )


async def count_days(w: Writer, days: list[tuple[int, str]]) -> None:
    """One more alert delivered to each (reader, local day): the daily cap."""
    if days:
        await w.executemany(
            "INSERT INTO daily_counts (subscription_id, day, count) VALUES (?, ?, 1) "
            "ON CONFLICT (subscription_id, day) DO UPDATE SET count = daily_counts.count + 1",
            days,
        )
