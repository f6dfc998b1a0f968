"""The embedded default store: one SQLite file in WAL mode, through aiosqlite.

One connection per process. Writes go through `_write()`, which holds an asyncio lock and a
`BEGIN IMMEDIATE` transaction, so coroutines sharing the connection never interleave statements
of different transactions, and other processes wait on SQLite's busy timeout instead of failing.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

import aiosqlite

from ..tokens import new_public_id
from .base import EndpointTaken, migration_files
from .models import NewSubscription, QuietHours, Subscription, VapidKeyRecord

SUBSCRIPTION_COLUMNS = (
    "id, public_id, endpoint, p256dh, auth, vapid_key_id, timezone, quiet_start, quiet_end, "
    "max_per_day, language, created_at, updated_at"
)
BUSY_TIMEOUT_MS = 10_000


class SQLiteStore:
    dialect = "sqlite"

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._db: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()

    @classmethod
    async def open(cls, path: str | Path) -> SQLiteStore:
        store = cls(path)
        store.path.parent.mkdir(parents=True, exist_ok=True)
        db = await aiosqlite.connect(store.path, isolation_level=None)
        await db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        await db.execute("PRAGMA journal_mode = WAL")
        await db.execute("PRAGMA synchronous = NORMAL")
        await db.execute("PRAGMA foreign_keys = ON")
        store._db = db
        return store

    @property
    def db(self) -> aiosqlite.Connection:
        if self._db is None:
            raise RuntimeError("store is closed")
        return self._db

    async def close(self) -> None:
        if self._db is not None:
            await self._db.close()
            self._db = None

    async def ping(self) -> bool:
        try:
            await self._one("SELECT 1")
        except (sqlite3.Error, ValueError, RuntimeError):
            return False
        return True

    @contextlib.asynccontextmanager
    async def _write(self) -> AsyncIterator[aiosqlite.Connection]:
        async with self._lock:
            await self.db.execute("BEGIN IMMEDIATE")
            try:
                yield self.db
            except BaseException:
                await self.db.execute("ROLLBACK")
                raise
            await self.db.execute("COMMIT")

    async def _one(self, sql: str, params: Iterable[Any] = ()) -> sqlite3.Row | None:
        async with self.db.execute(sql, tuple(params)) as cur:
            return await cur.fetchone()

    async def _all(self, sql: str, params: Iterable[Any] = ()) -> list[sqlite3.Row]:
        async with self.db.execute(sql, tuple(params)) as cur:
            return list(await cur.fetchall())

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
    async def list_vapid_keys(self) -> list[VapidKeyRecord]:
        rows = await self._all(
            "SELECT id, public_key, status, created_at FROM vapid_keys ORDER BY created_at, id"
        )
        return [VapidKeyRecord(*row) for row in rows]

    async def add_vapid_key(self, key_id: str, public_key: str, status: str) -> None:
        async with self._write() as db:
            if status == "active":
                await db.execute("UPDATE vapid_keys SET status='retiring' WHERE status='active'")
            await db.execute(
                "INSERT INTO vapid_keys (id, public_key, status, created_at) VALUES (?, ?, ?, ?)",
                (key_id, public_key, status, time.time()),
            )

    async def set_vapid_key_status(self, key_id: str, status: str) -> bool:
        async with self._write() as db:
            cur = await db.execute("UPDATE vapid_keys SET status=? WHERE id=?", (status, key_id))
            return cur.rowcount == 1

    async def count_subscriptions_by_key(self) -> dict[str, int]:
        rows = await self._all(
            "SELECT vapid_key_id, COUNT(*) FROM subscriptions GROUP BY vapid_key_id"
        )
        return {key: count for key, count in rows}

    # -- subscriptions ----------------------------------------------------------------
    async def upsert_subscription(self, new: NewSubscription) -> tuple[Subscription, bool]:
        now = time.time()
        async with self._write() as db:
            async with db.execute(
                "SELECT id FROM subscriptions WHERE endpoint = ?", (new.endpoint,)
            ) as cur:
                row = await cur.fetchone()
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
                sub_id, created = cur.lastrowid, True
                prefs = {"topics": list(new.default_topics), **new.preferences}
            else:
                sub_id, created, prefs = row[0], False, new.preferences
                await db.execute(
                    "UPDATE subscriptions SET p256dh=?, auth=?, vapid_key_id=?, token_hash=?, "
                    "updated_at=?, vapid_rejected_at=NULL, last_failure=NULL WHERE id=?",
                    (new.p256dh, new.auth, new.vapid_key_id, new.token_hash, now, sub_id),
                )
            await self._apply_preferences(db, sub_id, prefs, now)
        sub = await self.get_subscription_by_id(sub_id)
        assert sub is not None
        return sub, created

    async def _apply_preferences(
        self, db: aiosqlite.Connection, sub_id: int, prefs: dict[str, Any], now: float
    ) -> None:
        columns: dict[str, Any] = {}
        if "timezone" in prefs:
            columns["timezone"] = prefs["timezone"]
        if "quiet_hours" in prefs:
            quiet: QuietHours | None = prefs["quiet_hours"]
            columns["quiet_start"] = quiet.start if quiet else None
            columns["quiet_end"] = quiet.end if quiet else None
        for key in ("max_per_day", "language"):
            if key in prefs:
                columns[key] = prefs[key]
        if columns:
            assignments = ", ".join(f"{name}=?" for name in columns)
            await db.execute(
                f"UPDATE subscriptions SET {assignments}, updated_at=? WHERE id=?",
                (*columns.values(), now, sub_id),
            )
        if "topics" in prefs:
            await db.execute("DELETE FROM subscription_topics WHERE subscription_id=?", (sub_id,))
            await db.executemany(
                "INSERT INTO subscription_topics (topic, subscription_id) VALUES (?, ?)",
                [(topic, sub_id) for topic in sorted(set(prefs["topics"]))],
            )

    async def get_subscription(self, public_id: str) -> Subscription | None:
        row = await self._one(
            f"SELECT {SUBSCRIPTION_COLUMNS} FROM subscriptions WHERE public_id=?", (public_id,)
        )
        return await self._hydrate(row)

    async def get_subscription_by_id(self, sub_id: int) -> Subscription | None:
        row = await self._one(
            f"SELECT {SUBSCRIPTION_COLUMNS} FROM subscriptions WHERE id=?", (sub_id,)
        )
        return await self._hydrate(row)

    async def _hydrate(self, row: sqlite3.Row | None) -> Subscription | None:
        if row is None:
            return None
        topics = await self._all(
            "SELECT topic FROM subscription_topics WHERE subscription_id=? ORDER BY topic",
            (row[0],),
        )
        return subscription_from_row(row, [t[0] for t in topics])

    async def token_hash(self, public_id: str) -> bytes | None:
        row = await self._one(
            "SELECT token_hash FROM subscriptions WHERE public_id=?", (public_id,)
        )
        return bytes(row[0]) if row else None

    async def update_subscription(
        self, public_id: str, preferences: dict[str, Any], renewal: NewSubscription | None = None
    ) -> Subscription | None:
        now = time.time()
        async with self._write() as db:
            async with db.execute(
                "SELECT id FROM subscriptions WHERE public_id=?", (public_id,)
            ) as cur:
                row = await cur.fetchone()
            if row is None:
                return None
            sub_id = row[0]
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
            await self._apply_preferences(db, sub_id, preferences, now)
        return await self.get_subscription_by_id(sub_id)

    async def delete_subscription(self, public_id: str) -> bool:
        async with self._write() as db:
            cur = await db.execute("DELETE FROM subscriptions WHERE public_id=?", (public_id,))
            return cur.rowcount == 1

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

    async def record_outcomes(self, outcomes: list[tuple[int, str, str]]) -> None:
        if outcomes:
            async with self._write() as db:
                await _write_outcomes(db, outcomes, time.time())

    async def count_subscriptions(self) -> int:
        row = await self._one("SELECT COUNT(*) FROM subscriptions")
        return int(row[0]) if row else 0

    async def topic_counts(self) -> dict[str, int]:
        rows = await self._all(
            "SELECT topic, COUNT(*) FROM subscription_topics GROUP BY topic ORDER BY topic"
        )
        return {topic: count for topic, count in rows}


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


async def _write_outcomes(
    db: aiosqlite.Connection, outcomes: list[tuple[int, str, str]], now: float
) -> None:
    gone = [(sub_id,) for sub_id, result, _ in outcomes if result == "gone"]
    rejected = [(reason, now, i) for i, result, reason in outcomes if result == "vapid_rejected"]
    failed = [
        (reason, i)
        for i, result, reason in outcomes
        if result in ("failed", "rejected", "too_large")
    ]
    if gone:
        await db.executemany("DELETE FROM subscriptions WHERE id=?", gone)
    if rejected:
        await db.executemany(
            "UPDATE subscriptions SET last_failure=?, vapid_rejected_at=? WHERE id=?", rejected
        )
    if failed:
        await db.executemany("UPDATE subscriptions SET last_failure=? WHERE id=?", failed)


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
