"""The embedded default store: one SQLite file in WAL mode, through aiosqlite.

One connection per process. Writes go through `_write()`, which holds an asyncio lock and a
`BEGIN IMMEDIATE` transaction, so coroutines sharing the connection never interleave statements
of different transactions, and other processes wait on SQLite's busy timeout instead of failing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiosqlite

from ..secure_files import create_owner_only
from ..tokens import new_public_id, new_public_ids
from .base import EndpointTaken, RangeSplitter, migration_files
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
    encode_topics,
    import_row,
    may_take_over,
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

BUSY_TIMEOUT_MS = 10_000


# Two subqueries, not `SELECT MIN(id), MAX(id)`: SQLite answers a lone MIN or MAX from the
# rowid's ends but scans the table for both together (25 ms at 100,000 readers, inside the write
# lock, before the first shard can be claimed).
ID_RANGE = "SELECT (SELECT MIN(id) FROM subscriptions), (SELECT MAX(id) FROM subscriptions)"


BULK_CACHE_KIB = 128 * 1024
BULK_CHECKPOINT_PAGES = 16384  # 64 MB of 4 KiB pages


async def _connect(path: Path) -> aiosqlite.Connection:
    db = await aiosqlite.connect(path, isolation_level=None)
    await db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    return db


class SQLiteWriter:
    """A write transaction's statements on the SQLite connection (see writes.Writer)."""

    def __init__(self, db: aiosqlite.Connection):
        self.db = db

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        cur = await self.db.execute(sql, params)
        return cur.rowcount

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        await self.db.executemany(sql, rows)

    async def value(self, sql: str, params: Sequence[Any] = ()) -> Any:
        async with self.db.execute(sql, params) as cur:
            row = await cur.fetchone()
        return row[0] if row is not None else None


class SQLiteStore(SharedReads, SharedWrites):
    UNIQUE_VIOLATION = (sqlite3.IntegrityError,)
    dialect = "sqlite"

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._db: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()
        self._scans: aiosqlite.Connection | None = None
        self._scans_opening = asyncio.Lock()

    @classmethod
    async def open(cls, path: str | Path) -> SQLiteStore:
        store = cls(path)
        # Readers' endpoints and keys live here: a new data directory is for its owner only.
        store.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        # And the database itself, even in a directory that existed: SQLite would create it
        # with the umask's mode (0644), and its WAL and shared-memory files take its mode.
        with contextlib.suppress(FileExistsError):
            create_owner_only(store.path)
        db = await _connect(store.path)
        await db.execute("PRAGMA journal_mode = WAL")
        await db.execute("PRAGMA synchronous = NORMAL")
        await db.execute("PRAGMA foreign_keys = ON")
        store._db = db
        return store

    async def _scan(self, sql: str, params: Iterable[Any] = ()) -> list[sqlite3.Row]:
        """A read over a whole table or index (counts), or one the fan-out makes while its own
        checkpoints are written (the next batch's readers and their daily counts), on a
        connection of its own.

        On the shared connection such a read queues between the statements of whatever write
        transaction is open, which then holds SQLite's write lock for as long: measured, a
        reader subscribing held it 18 ms while an alert's audience was counted, and the
        workers sat in SQLite's busy-wait sleeps instead of planning the alert; with batches
        overlapping, `POST /api/subscriptions` p99 while sending was 200-470 ms.
        """
        if self._scans is None:
            async with self._scans_opening:
                if self._scans is None:
                    scans = await _connect(self.path)
                    await scans.execute("PRAGMA query_only = ON")
                    self._scans = scans
        return list(await self._scans.execute_fetchall(sql, tuple(params)))

    @property
    def db(self) -> aiosqlite.Connection:
        if self._db is None:
            raise RuntimeError("store is closed")
        return self._db

    async def close(self) -> None:
        if self._scans is not None:
            await self._scans.close()
            self._scans = None
        if self._db is not None:
            await self._db.close()
            self._db = None

    async def ping(self) -> bool:
        try:
            await self._one("SELECT 1")
        except (sqlite3.Error, ValueError, RuntimeError):
            return False
        return True

    async def listen_for_alerts(self, wake: Callable[[], None]) -> None:
        """SQLite has no notifications: workers in other processes poll."""

    @contextlib.asynccontextmanager
    async def _write(self) -> AsyncIterator[aiosqlite.Connection]:
        async with self._lock:
            await self.db.execute("BEGIN IMMEDIATE")
            try:
                yield self.db
                await self.db.execute("COMMIT")
            except BaseException:
                # SQLite rolls back by itself on some errors (a full disk): a ROLLBACK then
                # fails and would hide the error that matters. A failed COMMIT may leave the
                # transaction open, which must not wedge every later write.
                if self.db.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        await self.db.execute("ROLLBACK")
                raise

    # Reads outside a write run whole in one call on aiosqlite's thread: a statement left open
    # between calls keeps its snapshot, and a write another coroutine begins beside it after
    # another process committed fails at once ("database is locked", no busy wait).
    async def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        return await self._all(sql, params)

    async def _scan_rows(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        return await self._scan(sql, params)

    @contextlib.asynccontextmanager
    async def _writing(self) -> AsyncIterator[Writer]:
        async with self._write() as db:
            yield SQLiteWriter(db)

    async def _one(self, sql: str, params: Iterable[Any] = ()) -> sqlite3.Row | None:
        rows = await self._all(sql, params)
        return rows[0] if rows else None

    async def _all(self, sql: str, params: Iterable[Any] = ()) -> list[sqlite3.Row]:
        return list(await self.db.execute_fetchall(sql, tuple(params)))

    # -- schema -----------------------------------------------------------------------
    async def migrate(self) -> None:
        async with self._write() as db:
            await db.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations "
                "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at REAL NOT NULL)"
            )
            async with db.execute("SELECT version FROM schema_migrations") as cur:
                applied = {row[0] for row in await cur.fetchall()}
            for version, name, sql in migration_files(self.dialect):
                if version in applied:
                    continue
                for statement in _statements(sql):
                    await db.execute(statement)
                await db.execute(
                    "INSERT INTO schema_migrations VALUES (?, ?, ?)", (version, name, time.time())
                )

    async def schema_version(self) -> int:
        row = await self._one("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")
        return int(row[0]) if row else 0

    # -- VAPID keys -------------------------------------------------------------------
    # -- subscriptions ----------------------------------------------------------------
    async def upsert_subscription(
        self, new: NewSubscription, proof: bytes | None = None
    ) -> tuple[Subscription, bool]:
        now = time.time()
        async with self._write() as db:
            async with db.execute(
                "SELECT id, p256dh, auth, token_hash FROM subscriptions WHERE endpoint = ?",
                (new.endpoint,),
            ) as cur:
                row = await cur.fetchone()
            if row is not None and not may_take_over((row[1], row[2]), row[3], new, proof):
                raise EndpointTaken("that endpoint is subscribed with other keys")
            if row is None:
                cur = await db.execute(
                    "INSERT INTO subscriptions (public_id, endpoint, p256dh, auth, vapid_key_id, "
                    "token_hash, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        new_public_id(),
                        new.endpoint,
                        new.p256dh,
                        new.auth,
                        new.vapid_key_id,
                        new.token_hash,
                        now,
                        now,
                    ),
                )
                assert cur.lastrowid is not None
                sub_id, created = cur.lastrowid, True
                prefs = replace(
                    new.preferences, topics=new.preferences.topics_or(new.default_topics)
                )
                await apply_preferences(SQLiteWriter(db), sub_id, prefs, now)
            else:
                sub_id, created = row[0], False
                await refresh_subscription(SQLiteWriter(db), sub_id, new, now)
        sub = await self.get_subscription_by_id(sub_id)
        assert sub is not None
        return sub, created

    async def import_subscriptions(self, items: list[NewSubscription]) -> tuple[int, int]:
        """Add many readers in one transaction; known endpoints get new keys and preferences.

        Returns (created, updated). Ids are assigned here so both tables load with executemany.
        """
        now = time.time()
        created = updated = 0
        async with self._write() as db:
            endpoints = [item.endpoint for item in items]
            existing: dict[str, int] = {}
            for start in range(0, len(endpoints), 500):
                chunk = endpoints[start : start + 500]
                async with db.execute(
                    "SELECT endpoint, id FROM subscriptions WHERE endpoint IN "
                    f"({','.join('?' * len(chunk))})",
                    chunk,
                ) as cur:
                    existing.update({row[0]: row[1] for row in await cur.fetchall()})
            async with db.execute("SELECT COALESCE(MAX(id), 0) FROM subscriptions") as cur:
                next_id = (await cur.fetchone() or (0,))[0]
            rows, topic_rows = [], []
            public_ids = iter(new_public_ids(len(items)))
            writer = SQLiteWriter(db)
            for item in items:
                if item.endpoint in existing:
                    await refresh_subscription(writer, existing[item.endpoint], item, now)
                    updated += 1
                    continue
                next_id += 1
                existing[item.endpoint] = next_id
                row, topics = import_row(next_id, next(public_ids), item, now)
                rows.append(row)
                topic_rows += topics
                created += 1
            await db.executemany(
                f"INSERT INTO subscriptions ({', '.join(IMPORT_COLUMNS)}) "
                f"VALUES ({', '.join('?' * len(IMPORT_COLUMNS))})",
                rows,
            )
            await db.executemany(
                "INSERT INTO subscription_topics (topic, subscription_id) VALUES (?, ?)",
                topic_rows,
            )
        return created, updated

    @contextlib.asynccontextmanager
    async def bulk_loading(self) -> AsyncIterator[None]:
        """A page cache that holds the endpoint index, and checkpoints every 64 MB of WAL.

        Real endpoints are random strings, so each new reader lands on its own page of the
        unique endpoint index; with the default 2 MB cache that page is read back from the
        file and written out again at every checkpoint. Measured at a million readers with
        FCM-like endpoints: `pushdesk subscriptions import` took 75 s instead of 89. Nothing
        can be corrupted, but with `synchronous = NORMAL` the WAL reaches the disk at
        checkpoints, so a power loss can take back more of an import's last batches; an import
        cut short is simply run again (known endpoints are updated, not doubled).
        """
        async with self._lock:
            [(cache_size,)] = await self.db.execute_fetchall("PRAGMA cache_size")
            [(checkpoint_pages,)] = await self.db.execute_fetchall("PRAGMA wal_autocheckpoint")
            await self.db.execute(f"PRAGMA cache_size = -{BULK_CACHE_KIB}")
            await self.db.execute(f"PRAGMA wal_autocheckpoint = {BULK_CHECKPOINT_PAGES}")
        try:
            yield
        finally:
            async with self._lock:
                await self.db.execute(f"PRAGMA cache_size = {cache_size}")
                await self.db.execute(f"PRAGMA wal_autocheckpoint = {checkpoint_pages}")
                await self.db.execute("PRAGMA wal_checkpoint(PASSIVE)")

    async def update_subscription(
        self, public_id: str, preferences: Preferences, renewal: NewSubscription | None = None
    ) -> Subscription | None:
        now = time.time()
        async with self._write() as db:
            sub_id = await _row_id(db, "subscriptions", public_id)
            if sub_id is None:
                return None
            if renewal is not None:
                try:
                    await db.execute(
                        "UPDATE subscriptions SET endpoint=?, p256dh=?, auth=?, vapid_key_id=?, "
                        "updated_at=?, vapid_rejected_at=NULL, last_failure=NULL WHERE id=?",
                        (
                            renewal.endpoint,
                            renewal.p256dh,
                            renewal.auth,
                            renewal.vapid_key_id,
                            now,
                            sub_id,
                        ),
                    )
                except sqlite3.IntegrityError:
                    raise EndpointTaken("that endpoint belongs to another subscription") from None
            await apply_preferences(SQLiteWriter(db), sub_id, preferences, now)
        return await self.get_subscription_by_id(sub_id)

    async def list_subscriptions(self, after_id: int = 0, limit: int = 1000) -> list[Subscription]:
        rows = await self._all(
            f"SELECT {SUBSCRIPTION_COLUMNS} FROM subscriptions WHERE id > ? ORDER BY id LIMIT ?",
            (after_id, limit),
        )
        topics: dict[int, list[str]] = {row[0]: [] for row in rows}
        if rows:
            for topic, sub_id in await self._all(
                "SELECT topic, subscription_id FROM subscription_topics "
                "WHERE subscription_id BETWEEN ? AND ? ORDER BY topic",
                (rows[0][0], rows[-1][0]),
            ):
                if sub_id in topics:
                    topics[sub_id].append(topic)
        return [subscription_from_row(row, topics[row[0]]) for row in rows]

    # -- editors ----------------------------------------------------------------------
    # -- alerts -----------------------------------------------------------------------
    async def count_audience(self, topics: list[str]) -> int:
        """Readers of any of the topics: an index-only count (the editor waits for it).

        One topic (the usual "breaking") needs no DISTINCT: half the time at a million readers.
        """
        if len(topics) == 1:
            sql = "SELECT COUNT(*) FROM subscription_topics WHERE topic = ?"
        else:
            marks = ",".join("?" * len(topics))
            sql = (
                "SELECT COUNT(DISTINCT subscription_id) FROM subscription_topics "
                f"WHERE topic IN ({marks})"
            )
        [row] = await self._scan(sql, topics)
        return int(row[0])

    async def create_alert(
        self,
        new: NewAlert,
        *,
        idempotency_window: float,
        duplicate_window: float | None,
    ) -> AlertCreation:
        now = time.time()
        async with self._write() as db:
            if new.idempotency_key is not None:
                async with db.execute(
                    f"SELECT {ALERT_COLUMNS} FROM alerts WHERE editor=? AND idempotency_key=?",
                    (new.editor, new.idempotency_key),
                ) as cur:
                    row = await cur.fetchone()
                earlier = alert_from_row(row) if row is not None else None
                if earlier is not None and earlier.created_at > now - idempotency_window:
                    return AlertCreation(earlier, CreationOutcome.REPLAYED)
                if row is not None:  # an old key may be used again
                    await db.execute("UPDATE alerts SET idempotency_key=NULL WHERE id=?", (row[0],))
            if duplicate_window is not None:
                async with db.execute(
                    f"SELECT {ALERT_COLUMNS} FROM alerts WHERE url=? AND topics=? "
                    "AND created_at > ? AND status != 'cancelled' ORDER BY id DESC LIMIT 1",
                    (new.url, encode_topics(new.topics), now - duplicate_window),
                ) as cur:
                    row = await cur.fetchone()
                if row is not None:
                    return AlertCreation(alert_from_row(row), CreationOutcome.DUPLICATE)
            cur = await db.execute(
                "INSERT INTO alerts (public_id, title, url, body, icon, image, topics, ttl, "
                "urgency, respect_quiet_hours, editor, idempotency_key, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    new_public_id(),
                    new.title,
                    new.url,
                    new.body,
                    new.icon,
                    new.image,
                    encode_topics(new.topics),
                    new.ttl,
                    new.urgency,
                    int(new.respect_quiet_hours),
                    new.editor,
                    new.idempotency_key,
                    now,
                ),
            )
            alert_id = cur.lastrowid
        alert = await self._alert_where("id=?", alert_id)
        assert alert is not None
        return AlertCreation(alert, CreationOutcome.CREATED)

    async def cancel_alert(self, public_id: str) -> Alert | None:
        """Stop what is not yet sent: open shards close, pending deferrals count as skipped."""
        now = time.time()
        async with self._write() as db:
            async with db.execute(
                "SELECT id, status FROM alerts WHERE public_id=?", (public_id,)
            ) as cur:
                row = await cur.fetchone()
            if row is None:
                return None
            alert_id, status = row
            if status in CANCELLABLE:
                # The lease owner stays: a worker's batch in flight still writes its outcomes
                # (those messages went out) at its next checkpoint, then stops.
                await db.execute(
                    "UPDATE alert_shards SET state='done' WHERE alert_id=? AND state != 'done'",
                    (alert_id,),
                )
                cur = await db.execute(
                    "DELETE FROM deliveries_deferred WHERE alert_id=?", (alert_id,)
                )
                dropped = cur.rowcount
                new_status = cancelled_status(status, dropped)
                await db.execute(
                    "UPDATE alerts SET status=?, planned=1, finished_at=COALESCE(finished_at, ?),"
                    " deferred = deferred - ?, skipped = skipped + ? WHERE id=?",
                    (new_status, now, dropped, dropped, alert_id),
                )
        return await self.get_alert_by_id(alert_id)

    # -- fan-out work -----------------------------------------------------------------
    async def plan_next_alert(self, split: RangeSplitter) -> Alert | None:
        """Write the shards of one alert that has none yet; None when every alert is planned."""
        async with self._write() as db:
            async with db.execute(
                "SELECT id FROM alerts WHERE planned=0 AND status='queued' ORDER BY id LIMIT 1"
            ) as cur:
                row = await cur.fetchone()
            if row is None:
                return None
            alert_id = row[0]
            async with db.execute(ID_RANGE) as cur:
                lo, hi = await cur.fetchone() or (None, None)
            ranges = split(lo - 1, hi) if lo is not None and hi is not None else []
            await db.executemany(
                "INSERT INTO alert_shards (alert_id, lo, hi, cursor) VALUES (?, ?, ?, ?)",
                [(alert_id, a, b, a) for a, b in ranges],
            )
            await db.execute("UPDATE alerts SET planned=1 WHERE id=?", (alert_id,))
            if not ranges:
                await self._finish_alert(db, alert_id, time.time())
        return await self.get_alert_by_id(alert_id)

    async def claim_shard(self, owner: str, lease: float) -> Shard | None:
        now = time.time()
        async with self._write() as db:
            async with db.execute(
                "SELECT id, alert_id, lo, hi, cursor FROM alert_shards WHERE state != 'done' "
                "AND (state = 'queued' OR lease_expires < ?) ORDER BY id LIMIT 1",
                (now,),
            ) as cur:
                row = await cur.fetchone()
            if row is None:
                return None
            await db.execute(
                "UPDATE alert_shards SET state='claimed', lease_owner=?, lease_expires=?, "
                "claims = claims + 1 WHERE id=?",
                (owner, now + lease, row[0]),
            )
            await db.execute(
                "UPDATE alerts SET status='sending', started_at=COALESCE(started_at, ?) "
                "WHERE id=? AND status='queued'",
                (now, row[1]),
            )
        return Shard(*row)

    async def recipients(
        self, topics: list[str], after: int, upto: int, limit: int
    ) -> list[Recipient]:
        marks = ",".join("?" * len(topics))
        rows = await self._scan(
            f"SELECT {RECIPIENT_COLUMNS} FROM subscriptions WHERE id IN ("
            f"SELECT DISTINCT subscription_id FROM subscription_topics WHERE topic IN ({marks}) "
            "AND subscription_id > ? AND subscription_id <= ? ORDER BY subscription_id LIMIT ?"
            ") ORDER BY id",
            (*topics, after, upto, limit),
        )
        return [recipient_from_row(r) for r in rows]

    async def daily_counts(self, keys: list[tuple[int, str]]) -> dict[tuple[int, str], int]:
        if not keys:
            return {}
        ids = sorted({k[0] for k in keys})
        marks = ",".join("?" * len(ids))
        rows = await self._scan(
            "SELECT subscription_id, day, count FROM daily_counts "
            f"WHERE subscription_id IN ({marks})",
            ids,
        )
        wanted = set(keys)
        return {(r[0], r[1]): r[2] for r in rows if (r[0], r[1]) in wanted}

    async def checkpoint(self, cp: Checkpoint, owner: str, lease: float) -> str | None:
        """Write a batch and advance the cursor; None when the lease was lost to another worker.

        Returns the alert's status, so a worker notices a cancel at its next checkpoint. A
        checkpoint the shard's cursor already passed was written (its commit's answer was lost):
        writing it again would count the batch twice, so it only reads the status.
        """
        now = time.time()
        async with self._write() as db:
            async with db.execute(
                "SELECT lease_owner, state, cursor FROM alert_shards WHERE id=?", (cp.shard_id,)
            ) as cur:
                row = await cur.fetchone()
            if row is None or row[0] != owner:
                return None
            if row[1] != "claimed" and not await _cancelled(db, cp.alert_id):
                return None
            if row[2] < cp.cursor:
                cp.without_departed(await _live(db, cp.subscription_ids()))
                await write_batch(SQLiteWriter(db), cp, now)
            await db.execute(
                "UPDATE alert_shards SET cursor=MAX(cursor, ?), lease_expires=? WHERE id=?",
                (cp.cursor, now + lease, cp.shard_id),
            )
            async with db.execute("SELECT status FROM alerts WHERE id=?", (cp.alert_id,)) as cur:
                status = await cur.fetchone()
        return status[0] if status else None

    async def finish_shard(self, shard: Shard, owner: str) -> bool:
        """Close a worked shard; the last one closes its alert. False if the lease was lost."""
        now = time.time()
        async with self._write() as db:
            cur = await db.execute(
                "UPDATE alert_shards SET state='done', lease_owner=NULL "
                "WHERE id=? AND lease_owner=? AND state='claimed'",
                (shard.id, owner),
            )
            if cur.rowcount != 1:
                return False
            async with db.execute(
                "SELECT COUNT(*) FROM alert_shards WHERE alert_id=? AND state != 'done'",
                (shard.alert_id,),
            ) as c:
                remaining = (await c.fetchone() or (0,))[0]
            if remaining == 0:
                await self._finish_alert(db, shard.alert_id, now)
        return True

    async def _finish_alert(self, db: aiosqlite.Connection, alert_id: int, now: float) -> None:
        """All shards done: the audience becomes the exact number of readers worked."""
        await db.execute(
            "UPDATE alerts SET finished_at=?, "
            "audience = delivered + removed + failed + skipped + deferred, "
            "status = CASE WHEN status != 'sending' AND status != 'queued' THEN status "
            "WHEN delivered = 0 AND failed > 0 THEN 'failed' ELSE 'done' END WHERE id=?",
            (now, alert_id),
        )
        await db.execute(
            "DELETE FROM daily_counts WHERE day < date(?, 'unixepoch', '-2 days')", (now,)
        )

    async def claim_due(
        self, owner: str, now: float, limit: int, lease: float
    ) -> list[DueDelivery]:
        async with self._write() as db:
            async with db.execute(
                "SELECT d.alert_id, d.reason, d.attempts, "
                + ", ".join(f"s.{c.strip()}" for c in RECIPIENT_COLUMNS.split(","))
                + " FROM deliveries_deferred d JOIN subscriptions s ON s.id = d.subscription_id "
                "WHERE d.due_at <= ? AND (d.lease_expires IS NULL OR d.lease_expires < ?) "
                "ORDER BY d.due_at LIMIT ?",
                (now, now, limit),
            ) as cur:
                rows = list(await cur.fetchall())
            await db.executemany(
                "UPDATE deliveries_deferred SET lease_owner=?, lease_expires=? "
                "WHERE alert_id=? AND subscription_id=?",
                [(owner, now + lease, r[0], r[3]) for r in rows],
            )
        return [DueDelivery(r[0], r[1], r[2], recipient_from_row(r[3:])) for r in rows]

    async def settle(self, owner: str, settlements: list[Settlement]) -> None:
        async with self._writing() as w:
            await settle_due(w, owner, settlements, time.time())

    async def record_event(
        self, alert_public_id: str, subscription_public_id: str, kind: EventKind
    ) -> EventRecord:
        now = time.time()
        async with self._write() as db:
            async with db.execute(
                "SELECT id, topics FROM alerts WHERE public_id=?", (alert_public_id,)
            ) as cur:
                alert_row = await cur.fetchone()
            if alert_row is None:
                return EventRecord.UNKNOWN_ALERT
            alert_id, topics = alert_row[0], json.loads(alert_row[1])
            sub_id = await _row_id(db, "subscriptions", subscription_public_id)
            if sub_id is None:
                return EventRecord.UNKNOWN_SUBSCRIPTION
            marks = ",".join("?" * len(topics))
            async with db.execute(
                # In the audience: subscribed when the alert was planned (within its shards'
                # ranges) and following one of its topics.
                "SELECT 1 WHERE ? <= (SELECT MAX(hi) FROM alert_shards WHERE alert_id=?) "
                "AND EXISTS (SELECT 1 FROM subscription_topics WHERE subscription_id=? "
                f"AND topic IN ({marks}))",
                (sub_id, alert_id, sub_id, *topics),
            ) as cur:
                if await cur.fetchone() is None:
                    return EventRecord.NOT_IN_AUDIENCE
            cur = await db.execute(
                "INSERT INTO events (alert_id, subscription_id, type, at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT DO NOTHING",
                (alert_id, sub_id, kind, now),
            )
            if cur.rowcount != 1:
                return EventRecord.DUPLICATE
            await add_counts(SQLiteWriter(db), alert_id, {Count(kind): 1}, None)
        return EventRecord.COUNTED

    async def event_seconds(self, alert_id: int) -> list[tuple[int, str, int]]:
        rows = await self._all(
            "SELECT CAST(e.at - a.created_at AS INTEGER), e.type, COUNT(*) FROM events e "
            "JOIN alerts a ON a.id = e.alert_id WHERE e.alert_id=? GROUP BY 1, 2 ORDER BY 1",
            (alert_id,),
        )
        return [(r[0], r[1], r[2]) for r in rows]

    async def has_work(self, now: float) -> bool:
        """A read-only look, so idle workers polling never take the write lock."""
        row = await self._one(
            "SELECT EXISTS (SELECT 1 FROM alerts WHERE planned = 0 AND status = 'queued') "
            "OR EXISTS (SELECT 1 FROM alert_shards WHERE state != 'done' "
            "AND (state = 'queued' OR lease_expires < ?)) "
            "OR EXISTS (SELECT 1 FROM deliveries_deferred WHERE due_at <= ? "
            "AND (lease_expires IS NULL OR lease_expires < ?))",
            (now, now, now),
        )
        return bool(row and row[0])

    async def pending_work(self) -> dict[str, int]:
        row = await self._one(
            "SELECT (SELECT COUNT(*) FROM alert_shards WHERE state != 'done'), "
            "(SELECT COUNT(*) FROM deliveries_deferred), "
            "(SELECT COUNT(*) FROM alerts WHERE planned = 0)"
        )
        assert row is not None
        return {"shards": row[0], "deferred": row[1], "unplanned": row[2]}


async def _cancelled(db: aiosqlite.Connection, alert_id: int) -> bool:
    async with db.execute("SELECT status FROM alerts WHERE id=?", (alert_id,)) as cur:
        row = await cur.fetchone()
    return row is not None and row[0] == AlertStatus.CANCELLED


async def _live(db: aiosqlite.Connection, ids: set[int]) -> set[int]:
    """Which of these readers still exist, inside the write transaction (so none can go)."""
    if not ids:
        return set()
    marks = ",".join("?" * len(ids))
    async with db.execute(f"SELECT id FROM subscriptions WHERE id IN ({marks})", list(ids)) as c:
        return {row[0] for row in await c.fetchall()}


async def _row_id(db: aiosqlite.Connection, table: str, public_id: str) -> int | None:
    async with db.execute(f"SELECT id FROM {table} WHERE public_id=?", (public_id,)) as cur:
        row = await cur.fetchone()
    return row[0] if row else None


def _statements(script: str) -> list[str]:
    """Split a migration script into statements (sqlite3 runs one per execute)."""
    statements, buffer = [], ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            statements.append(buffer.strip())
            buffer = ""
    if buffer.strip() and not all(
        part.strip().startswith("--") or not part.strip() for part in buffer.splitlines()
    ):
        raise ValueError(f"incomplete statement in migration: {buffer.strip()[:60]}")
    return statements
