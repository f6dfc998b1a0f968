"""The PostgreSQL store (asyncpg), for deployments where many worker processes on many machines
share the fan-out.

Workers claim shards and due deliveries with `FOR UPDATE SKIP LOCKED`, so no two live workers
ever hold the same shard, and a new alert is announced with NOTIFY so listening workers start
within milliseconds instead of at their next poll.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import replace
from typing import Any, TypeAlias

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from ..tokens import new_public_id, new_public_ids
from .base import EndpointTaken, RangeSplitter, StoreError, migration_files
from .models import (
    Alert,
    AlertCreation,
    AlertStatus,
    Checkpoint,
    Count,
    CreationOutcome,
    DueDelivery,
    EventKind,
    EventRecord,
    NewAlert,
    NewSubscription,
    Preferences,
    Recipient,
    Settlement,
    Shard,
    Subscription,
)
from .reads import SharedReads
from .rows import (
    ALERT_COLUMNS,
    CANCELLABLE,
    IMPORT_COLUMNS,
    RECIPIENT_COLUMNS,
    SUBSCRIPTION_COLUMNS,
    alert_from_row,
    cancelled_status,
    command_count,
    encode_topics,
    import_row,
    may_take_over,
    numbered,
    recipient_from_row,
    subscription_from_row,
)
from .writes import (
    SharedWrites,
    Writer,
    add_counts,
    apply_preferences,
    refresh_subscription,
    settle_due,
    write_batch,
)

# What a transaction runs on: a connection lent by the pool (the listener alone is a plain one).
Conn: TypeAlias = "PoolConnectionProxy[asyncpg.Record]"

MIGRATION_LOCK = 7_467_001  # pg_advisory_xact_lock keys: serialise migrations...
ALERT_LOCK = 7_467_002  # ...and alert creation (idempotency and duplicate checks)
NEW_ALERT_CHANNEL = "pushdesk_alerts"


class PostgresWriter:
    """A transaction's statements on a pooled connection, `?` numbered (see writes.Writer)."""

    def __init__(self, conn: Conn):
        self.conn = conn

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        return command_count(await self.conn.execute(numbered(sql), *params))

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        await self.conn.executemany(numbered(sql), rows)

    async def value(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return await self.conn.fetchval(numbered(sql), *params)


class PostgresStore(SharedReads, SharedWrites):
    UNIQUE_VIOLATION = (asyncpg.UniqueViolationError,)
    dialect = "postgres"

    def __init__(self, pool: asyncpg.Pool, dsn: str):
        self.pool = pool
        self.dsn = dsn
        self._listener: asyncpg.Connection | None = None
        self._wake: Callable[[], None] = lambda: None
        self._closing = False
        self._relistening: asyncio.Future[None] | None = None

    @classmethod
    async def open(cls, dsn: str) -> PostgresStore:
        try:
            pool = await asyncpg.create_pool(dsn, min_size=1, max_size=10, command_timeout=60)
        except (OSError, asyncpg.PostgresError) as exc:
            raise StoreError(f"cannot connect to PostgreSQL: {exc}") from None
        return cls(pool, dsn)

    async def close(self) -> None:
        self._closing = True
        if self._relistening is not None:
            self._relistening.cancel()
        if self._listener is not None:
            with contextlib.suppress(Exception):
                await self._listener.close()
            self._listener = None
        if not self.pool.is_closing():
            await self.pool.close()

    @contextlib.asynccontextmanager
    async def _writing(self) -> AsyncIterator[Writer]:
        async with self._tx() as conn:
            yield PostgresWriter(conn)

    async def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        return await self.pool.fetch(numbered(sql), *params)

    async def ping(self) -> bool:
        try:
            answer: int | None = await self.pool.fetchval("SELECT 1")
            return answer == 1
        except Exception:  # any failure to answer means not ready
            return False

    @contextlib.asynccontextmanager
    async def _tx(self) -> AsyncIterator[Conn]:
        async with self.pool.acquire() as conn, conn.transaction():
            yield conn

    async def listen_for_alerts(self, wake: Callable[[], None]) -> None:
        """Call `wake` whenever any process stores a new alert; reconnect if the database drops
        the listening connection (a restart), so workers keep starting within milliseconds."""
        self._wake = wake
        if self._listener is None or self._listener.is_closed():
            self._listener = await asyncpg.connect(self.dsn)
            await self._listener.add_listener(NEW_ALERT_CHANNEL, lambda *args: wake())
            self._listener.add_termination_listener(lambda conn: self._relisten())

    def _relisten(self) -> None:
        if self._closing:
            return
        self._relistening = asyncio.ensure_future(self._reconnect_listener())

    async def _reconnect_listener(self) -> None:
        delay = 0.2
        while not self._closing:
            try:
                await self.listen_for_alerts(self._wake)
                self._wake()  # an alert may have been stored while we were not listening
                return
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    # -- schema -----------------------------------------------------------------------
    async def migrate(self) -> None:
        async with self._tx() as conn:
            await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK)
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
                "name TEXT NOT NULL, applied_at DOUBLE PRECISION NOT NULL)"
            )
            applied = {r[0] for r in await conn.fetch("SELECT version FROM schema_migrations")}
            for version, name, sql in migration_files(self.dialect):
                if version not in applied:
                    await conn.execute(sql)
                    await conn.execute(
                        "INSERT INTO schema_migrations VALUES ($1, $2, $3)",
                        version,
                        name,
                        time.time(),
                    )

    async def schema_version(self) -> int:
        return int(
            await self.pool.fetchval("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")
        )

    # -- VAPID keys -------------------------------------------------------------------
    # -- subscriptions ----------------------------------------------------------------
    async def upsert_subscription(
        self, new: NewSubscription, proof: bytes | None = None
    ) -> tuple[Subscription, bool]:
        now = time.time()
        async with self._tx() as conn:
            known = await conn.fetchrow(
                "SELECT p256dh, auth, token_hash FROM subscriptions WHERE endpoint=$1 FOR UPDATE",
                new.endpoint,
            )
            if known is not None and not may_take_over((known[0], known[1]), known[2], new, proof):
                raise EndpointTaken("that endpoint is subscribed with other keys")
            # xmax is 0 only for a row this statement inserted: tells insert from update.
            sub_id, created = await _fetch_one(
                conn,
                "INSERT INTO subscriptions (public_id, endpoint, p256dh, auth, vapid_key_id, "
                "token_hash, created_at, updated_at) VALUES ($1,$2,$3,$4,$5,$6,$7,$7) "
                "ON CONFLICT (endpoint) DO UPDATE SET updated_at = excluded.updated_at "
                "RETURNING id, (xmax = 0)",
                new_public_id(),
                new.endpoint,
                new.p256dh,
                new.auth,
                new.vapid_key_id,
                new.token_hash,
                now,
            )
            if created:
                prefs = replace(
                    new.preferences, topics=new.preferences.topics_or(new.default_topics)
                )
                await apply_preferences(PostgresWriter(conn), sub_id, prefs, now)
            else:
                await refresh_subscription(PostgresWriter(conn), sub_id, new, now)
        sub = await self.get_subscription_by_id(sub_id)
        assert sub is not None
        return sub, created

    @contextlib.asynccontextmanager
    async def bulk_loading(self) -> AsyncIterator[None]:
        """Nothing to change: each batch is one transaction on a pooled connection, and the
        server's own memory settings already serve every session."""
        yield

    async def import_subscriptions(self, items: list[NewSubscription]) -> tuple[int, int]:
        now = time.time()
        created = updated = 0
        async with self._tx() as conn:
            existing = {
                r[0]: r[1]
                for r in await conn.fetch(
                    "SELECT endpoint, id FROM subscriptions WHERE endpoint = ANY($1::text[])",
                    [i.endpoint for i in items],
                )
            }
            fresh = [i for i in items if i.endpoint not in existing]
            writer = PostgresWriter(conn)
            for item in items:
                if item.endpoint in existing:
                    await refresh_subscription(writer, existing[item.endpoint], item, now)
                    updated += 1
            if fresh:
                ids = await conn.fetch(
                    "SELECT nextval(pg_get_serial_sequence('subscriptions', 'id')) "
                    "FROM generate_series(1, $1)",
                    len(fresh),
                )
                rows, topic_rows = [], []
                public_ids = new_public_ids(len(fresh))
                for item, (sub_id,), public_id in zip(fresh, ids, public_ids, strict=True):
                    row, topics = import_row(sub_id, public_id, item, now)
                    rows.append(row)
                    topic_rows += topics
                await conn.copy_records_to_table(
                    "subscriptions",
                    records=rows,
                    columns=list(IMPORT_COLUMNS),
                )
                await conn.copy_records_to_table(
                    "subscription_topics", records=topic_rows, columns=["topic", "subscription_id"]
                )
                created = len(fresh)
        return created, updated

    async def update_subscription(
        self, public_id: str, preferences: Preferences, renewal: NewSubscription | None = None
    ) -> Subscription | None:
        now = time.time()
        async with self._tx() as conn:
            sub_id = await conn.fetchval(
                "SELECT id FROM subscriptions WHERE public_id=$1 FOR UPDATE", public_id
            )
            if sub_id is None:
                return None
            if renewal is not None:
                try:
                    async with conn.transaction():
                        await conn.execute(
                            "UPDATE subscriptions SET endpoint=$1, p256dh=$2, auth=$3, "
                            "vapid_key_id=$4, updated_at=$5, vapid_rejected_at=NULL, "
                            "last_failure=NULL WHERE id=$6",
                            renewal.endpoint,
                            renewal.p256dh,
                            renewal.auth,
                            renewal.vapid_key_id,
                            now,
                            sub_id,
                        )
                except asyncpg.UniqueViolationError:
                    raise EndpointTaken("that endpoint belongs to another subscription") from None
            await apply_preferences(PostgresWriter(conn), sub_id, preferences, now)
        return await self.get_subscription_by_id(sub_id)

    async def list_subscriptions(self, after_id: int = 0, limit: int = 1000) -> list[Subscription]:
        rows = await self.pool.fetch(
            f"SELECT {SUBSCRIPTION_COLUMNS} FROM subscriptions WHERE id > $1 ORDER BY id LIMIT $2",
            after_id,
            limit,
        )
        topics: dict[int, list[str]] = {row[0]: [] for row in rows}
        if rows:
            for topic, sub_id in await self.pool.fetch(
                "SELECT topic, subscription_id FROM subscription_topics "
                "WHERE subscription_id = ANY($1::bigint[]) ORDER BY topic",
                list(topics),
            ):
                topics[sub_id].append(topic)
        return [subscription_from_row(row, topics[row[0]]) for row in rows]

    # -- editors ----------------------------------------------------------------------
    # -- alerts -----------------------------------------------------------------------
    async def count_audience(self, topics: list[str]) -> int:
        if len(topics) == 1:  # the usual "breaking": no DISTINCT needed
            sql = "SELECT COUNT(*) FROM subscription_topics WHERE topic = ($1::text[])[1]"
        else:
            sql = (
                "SELECT COUNT(DISTINCT subscription_id) FROM subscription_topics "
                "WHERE topic = ANY($1::text[])"
            )
        return int(await self.pool.fetchval(sql, topics))

    async def create_alert(
        self,
        new: NewAlert,
        *,
        idempotency_window: float,
        duplicate_window: float | None,
    ) -> AlertCreation:
        now = time.time()
        topics = encode_topics(new.topics)
        async with self._tx() as conn:
            await conn.execute("SELECT pg_advisory_xact_lock($1)", ALERT_LOCK)
            if new.idempotency_key is not None:
                row = await conn.fetchrow(
                    f"SELECT {ALERT_COLUMNS} FROM alerts WHERE editor=$1 AND idempotency_key=$2",
                    new.editor,
                    new.idempotency_key,
                )
                earlier = alert_from_row(row) if row is not None else None
                if earlier is not None and earlier.created_at > now - idempotency_window:
                    return AlertCreation(earlier, CreationOutcome.REPLAYED)
                if row is not None:
                    await conn.execute("UPDATE alerts SET idempotency_key=NULL WHERE id=$1", row[0])
            if duplicate_window is not None:
                row = await conn.fetchrow(
                    f"SELECT {ALERT_COLUMNS} FROM alerts WHERE url=$1 AND topics=$2 "
                    "AND created_at > $3 AND status <> 'cancelled' ORDER BY id DESC LIMIT 1",
                    new.url,
                    topics,
                    now - duplicate_window,
                )
                if row is not None:
                    return AlertCreation(alert_from_row(row), CreationOutcome.DUPLICATE)
            row = await conn.fetchrow(
                "INSERT INTO alerts (public_id, title, url, body, icon, image, topics, ttl, "
                "urgency, respect_quiet_hours, editor, idempotency_key, created_at) "
                "VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13) "
                f"RETURNING {ALERT_COLUMNS}",
                new_public_id(),
                new.title,
                new.url,
                new.body,
                new.icon,
                new.image,
                topics,
                new.ttl,
                new.urgency,
                new.respect_quiet_hours,
                new.editor,
                new.idempotency_key,
                now,
            )
            await conn.execute(f"NOTIFY {NEW_ALERT_CHANNEL}")
        return AlertCreation(alert_from_row(row), CreationOutcome.CREATED)

    async def cancel_alert(self, public_id: str) -> Alert | None:
        now = time.time()
        async with self._tx() as conn:
            row = await conn.fetchrow("SELECT id, status FROM alerts WHERE public_id=$1", public_id)
            if row is None:
                return None
            alert_id = row[0]
            # Shards first, then the alert row: the order claims and checkpoints lock them in,
            # so a cancel meeting a checkpoint waits for it rather than deadlocking.
            if row[1] in CANCELLABLE:
                # The lease owner stays: a worker's batch in flight still writes its outcomes
                # (those messages went out) at its next checkpoint, then stops.
                await conn.execute(
                    "UPDATE alert_shards SET state='done' WHERE alert_id=$1 AND state <> 'done'",
                    alert_id,
                )
            status = await conn.fetchval(
                "SELECT status FROM alerts WHERE id=$1 FOR UPDATE", alert_id
            )
            if status in CANCELLABLE:
                dropped = command_count(
                    await conn.execute(
                        "DELETE FROM deliveries_deferred WHERE alert_id=$1", alert_id
                    )
                )
                new_status = cancelled_status(status, dropped)
                await conn.execute(
                    "UPDATE alerts SET status=$1, planned=TRUE, "
                    "finished_at=COALESCE(finished_at, $2), deferred = deferred - $3, "
                    "skipped = skipped + $3 WHERE id=$4",
                    new_status,
                    now,
                    dropped,
                    alert_id,
                )
        return await self.get_alert_by_id(alert_id)

    # -- fan-out work -----------------------------------------------------------------
    async def plan_next_alert(self, split: RangeSplitter) -> Alert | None:
        async with self._tx() as conn:
            alert_id = await conn.fetchval(
                "SELECT id FROM alerts WHERE NOT planned AND status='queued' ORDER BY id "
                "LIMIT 1 FOR UPDATE SKIP LOCKED"
            )
            if alert_id is None:
                return None
            lo, hi = await _fetch_one(conn, "SELECT MIN(id), MAX(id) FROM subscriptions")
            ranges = split(lo - 1, hi) if lo is not None else []
            await conn.executemany(
                "INSERT INTO alert_shards (alert_id, lo, hi, cursor) VALUES ($1, $2, $3, $2)",
                [(alert_id, a, b) for a, b in ranges],
            )
            await conn.execute("UPDATE alerts SET planned=TRUE WHERE id=$1", alert_id)
            if not ranges:
                await _finish_alert(conn, alert_id, time.time())
        return await self.get_alert_by_id(alert_id)

    async def claim_shard(self, owner: str, lease: float) -> Shard | None:
        now = time.time()
        async with self._tx() as conn:
            row = await conn.fetchrow(
                "WITH next AS (SELECT id FROM alert_shards WHERE state <> 'done' "
                "AND (state = 'queued' OR lease_expires < $1) ORDER BY id LIMIT 1 "
                "FOR UPDATE SKIP LOCKED) "
                "UPDATE alert_shards s SET state='claimed', lease_owner=$2, lease_expires=$3, "
                "claims = claims + 1 FROM next WHERE s.id = next.id "
                "RETURNING s.id, s.alert_id, s.lo, s.hi, s.cursor",
                now,
                owner,
                now + lease,
            )
            if row is None:
                return None
            await conn.execute(
                "UPDATE alerts SET status='sending', started_at=COALESCE(started_at, $1) "
                "WHERE id=$2 AND status='queued'",
                now,
                row[1],
            )
        return Shard(*row)

    async def recipients(
        self, topics: list[str], after: int, upto: int, limit: int
    ) -> list[Recipient]:
        rows = await self.pool.fetch(
            f"SELECT {RECIPIENT_COLUMNS} FROM subscriptions WHERE id IN ("
            "SELECT DISTINCT subscription_id FROM subscription_topics "
            "WHERE topic = ANY($1::text[]) AND subscription_id > $2 AND subscription_id <= $3 "
            "ORDER BY subscription_id LIMIT $4) ORDER BY id",
            topics,
            after,
            upto,
            limit,
        )
        return [recipient_from_row(r) for r in rows]

    async def daily_counts(self, keys: list[tuple[int, str]]) -> dict[tuple[int, str], int]:
        if not keys:
            return {}
        rows = await self.pool.fetch(
            "SELECT subscription_id, day, count FROM daily_counts "
            "WHERE subscription_id = ANY($1::bigint[])",
            sorted({k[0] for k in keys}),
        )
        wanted = set(keys)
        return {(r[0], r[1]): r[2] for r in rows if (r[0], r[1]) in wanted}

    async def checkpoint(self, cp: Checkpoint, owner: str, lease: float) -> str | None:
        now = time.time()
        async with self._tx() as conn:
            row = await conn.fetchrow(
                "SELECT lease_owner, state, cursor FROM alert_shards WHERE id=$1 FOR UPDATE",
                cp.shard_id,
            )
            if row is None or row[0] != owner:
                return None
            if (
                row[1] != "claimed"
                and await _alert_status(conn, cp.alert_id) != AlertStatus.CANCELLED
            ):
                return None
            if row[2] < cp.cursor:  # else written already: the commit's answer was lost
                cp.without_departed(await _live(conn, cp.subscription_ids()))
                await write_batch(PostgresWriter(conn), cp, now)
            await conn.execute(
                "UPDATE alert_shards SET cursor=GREATEST(cursor, $1), lease_expires=$2 WHERE id=$3",
                cp.cursor,
                now + lease,
                cp.shard_id,
            )
            return await _alert_status(conn, cp.alert_id)

    async def finish_shard(self, shard: Shard, owner: str) -> bool:
        now = time.time()
        async with self._tx() as conn:
            result = await conn.execute(
                "UPDATE alert_shards SET state='done', lease_owner=NULL "
                "WHERE id=$1 AND lease_owner=$2 AND state='claimed'",
                shard.id,
                owner,
            )
            if command_count(result) != 1:
                return False
            # Lock the alert row so two workers finishing its last shards see each other.
            await conn.execute("SELECT 1 FROM alerts WHERE id=$1 FOR UPDATE", shard.alert_id)
            remaining = await conn.fetchval(
                "SELECT COUNT(*) FROM alert_shards WHERE alert_id=$1 AND state <> 'done'",
                shard.alert_id,
            )
            if remaining == 0:
                await _finish_alert(conn, shard.alert_id, now)
        return True

    async def claim_due(
        self, owner: str, now: float, limit: int, lease: float
    ) -> list[DueDelivery]:
        async with self._tx() as conn:
            claimed = await conn.fetch(
                "WITH due AS (SELECT alert_id, subscription_id FROM deliveries_deferred "
                "WHERE due_at <= $1 AND (lease_expires IS NULL OR lease_expires < $1) "
                "ORDER BY due_at LIMIT $2 FOR UPDATE SKIP LOCKED) "
                "UPDATE deliveries_deferred d SET lease_owner=$3, lease_expires=$4 FROM due "
                "WHERE d.alert_id = due.alert_id AND d.subscription_id = due.subscription_id "
                "RETURNING d.alert_id, d.reason, d.attempts, d.subscription_id",
                now,
                limit,
                owner,
                now + lease,
            )
            if not claimed:
                return []
            rows = await conn.fetch(
                f"SELECT {RECIPIENT_COLUMNS} FROM subscriptions WHERE id = ANY($1::bigint[])",
                [c[3] for c in claimed],
            )
        recipients = {r[0]: recipient_from_row(r) for r in rows}
        return [
            DueDelivery(c[0], c[1], c[2], recipients[c[3]]) for c in claimed if c[3] in recipients
        ]

    async def settle(self, owner: str, settlements: list[Settlement]) -> None:
        async with self._tx() as conn:
            # Readers deleted meanwhile took their deferrals with them (the DELETE finds
            # nothing); the rest are locked so none goes before its rows are written.
            await _live(conn, {item.subscription_id for item in settlements})
            await settle_due(PostgresWriter(conn), owner, settlements, time.time())

    async def record_event(
        self, alert_public_id: str, subscription_public_id: str, kind: EventKind
    ) -> EventRecord:
        async with self._tx() as conn:
            alert_row = await conn.fetchrow(
                "SELECT id, topics FROM alerts WHERE public_id=$1", alert_public_id
            )
            if alert_row is None:
                return EventRecord.UNKNOWN_ALERT
            alert_id, topics = alert_row[0], json.loads(alert_row[1])
            sub_id = await conn.fetchval(
                "SELECT id FROM subscriptions WHERE public_id=$1", subscription_public_id
            )
            if sub_id is None:
                return EventRecord.UNKNOWN_SUBSCRIPTION
            in_audience = await conn.fetchval(
                # In the audience: subscribed when the alert was planned (within its shards'
                # ranges) and following one of its topics.
                "SELECT $1 <= (SELECT MAX(hi) FROM alert_shards WHERE alert_id=$2) "
                "AND EXISTS (SELECT 1 FROM subscription_topics WHERE subscription_id=$1 "
                "AND topic = ANY($3::text[]))",
                sub_id,
                alert_id,
                topics,
            )
            if not in_audience:
                return EventRecord.NOT_IN_AUDIENCE
            result = await conn.execute(
                "INSERT INTO events (alert_id, subscription_id, type, at) VALUES ($1, $2, $3, $4) "
                "ON CONFLICT DO NOTHING",
                alert_id,
                sub_id,
                kind,
                time.time(),
            )
            if command_count(result) != 1:
                return EventRecord.DUPLICATE
            await add_counts(PostgresWriter(conn), alert_id, {Count(kind): 1}, None)
        return EventRecord.COUNTED

    async def event_seconds(self, alert_id: int) -> list[tuple[int, str, int]]:
        rows = await self.pool.fetch(
            "SELECT FLOOR(e.at - a.created_at)::int, e.type, COUNT(*) FROM events e "
            "JOIN alerts a ON a.id = e.alert_id WHERE e.alert_id=$1 GROUP BY 1, 2 ORDER BY 1",
            alert_id,
        )
        return [(r[0], r[1], r[2]) for r in rows]

    async def has_work(self, now: float) -> bool:
        return bool(
            await self.pool.fetchval(
                "SELECT EXISTS (SELECT 1 FROM alerts WHERE NOT planned AND status = 'queued') "
                "OR EXISTS (SELECT 1 FROM alert_shards WHERE state <> 'done' "
                "AND (state = 'queued' OR lease_expires < $1)) "
                "OR EXISTS (SELECT 1 FROM deliveries_deferred WHERE due_at <= $1 "
                "AND (lease_expires IS NULL OR lease_expires < $1))",
                now,
            )
        )

    async def pending_work(self) -> dict[str, int]:
        row = await _fetch_one(
            self.pool,
            "SELECT (SELECT COUNT(*) FROM alert_shards WHERE state <> 'done'), "
            "(SELECT COUNT(*) FROM deliveries_deferred), "
            "(SELECT COUNT(*) FROM alerts WHERE NOT planned)",
        )
        return {"shards": row[0], "deferred": row[1], "unplanned": row[2]}


async def _fetch_one(conn: Conn | asyncpg.Pool, sql: str, *args: Any) -> asyncpg.Record:
    """A statement that always returns exactly one row (an aggregate, INSERT ... RETURNING)."""
    row = await conn.fetchrow(sql, *args)
    assert row is not None, sql
    return row


async def _alert_status(conn: Conn, alert_id: int) -> str | None:
    status: str | None = await conn.fetchval("SELECT status FROM alerts WHERE id=$1", alert_id)
    return status


async def _live(conn: Conn, ids: set[int]) -> set[int]:
    """Which of these readers still exist, locked (KEY SHARE, in id order) so none can be
    deleted before this transaction's rows that refer to them are written."""
    if not ids:
        return set()
    rows = await conn.fetch(
        "SELECT id FROM subscriptions WHERE id = ANY($1::bigint[]) ORDER BY id FOR KEY SHARE",
        sorted(ids),
    )
    return {row[0] for row in rows}


async def _finish_alert(conn: Conn, alert_id: int, now: float) -> None:
    await conn.execute(
        "UPDATE alerts SET finished_at=$1, "
        "audience = delivered + removed + failed + skipped + deferred, "
        "status = CASE WHEN status NOT IN ('sending', 'queued') THEN status "
        "WHEN delivered = 0 AND failed > 0 THEN 'failed' ELSE 'done' END WHERE id=$2",
        now,
        alert_id,
    )
    cutoff = time.strftime("%Y-%m-%d", time.gmtime(now - 2 * 86400))
    await conn.execute("DELETE FROM daily_counts WHERE day < $1", cutoff)
