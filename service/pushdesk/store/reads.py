"""The reads both stores run alike, written once with `?` placeholders.

A store supplies `_rows` (a statement's rows) and `_scan_rows` (a read over a whole table, which
SQLite runs on a connection of its own); PostgreSQL's turn the placeholders into `$1, $2, ...`
(`rows.numbered`). Reads that differ by dialect (`= ANY($1)` against `IN (?, ?)`, integer casts,
booleans) and every write that locks stay in each store.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .models import Alert, Subscription, VapidKeyRecord
from .rows import ALERT_COLUMNS, SUBSCRIPTION_COLUMNS, alert_from_row, subscription_from_row


class SharedReads:
    async def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        """The rows of one statement written with `?` placeholders."""
        raise NotImplementedError

    async def _scan_rows(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        """Like `_rows`, for a read over a whole table or index (counts)."""
        return await self._rows(sql, params)

    async def _row(self, sql: str, params: Sequence[Any] = ()) -> Any | None:
        rows = await self._rows(sql, params)
        return rows[0] if rows else None

    # -- VAPID keys ------------------------------------------------------------------
    async def list_vapid_keys(self) -> list[VapidKeyRecord]:
        rows = await self._rows(
            "SELECT id, public_key, status, created_at FROM vapid_keys ORDER BY created_at, id"
        )
        return [VapidKeyRecord(*row) for row in rows]

    async def count_subscriptions_by_key(self) -> dict[str, int]:
        rows = await self._scan_rows(
            "SELECT vapid_key_id, COUNT(*) FROM subscriptions GROUP BY vapid_key_id"
        )
        return {row[0]: row[1] for row in rows}

    # -- subscriptions ---------------------------------------------------------------
    async def get_subscription(self, public_id: str) -> Subscription | None:
        row = await self._row(
            f"SELECT {SUBSCRIPTION_COLUMNS} FROM subscriptions WHERE public_id=?", (public_id,)
        )
        return await self._hydrate(row)

    async def get_subscription_by_id(self, sub_id: int) -> Subscription | None:
        row = await self._row(
            f"SELECT {SUBSCRIPTION_COLUMNS} FROM subscriptions WHERE id=?", (sub_id,)
        )
        return await self._hydrate(row)

    async def _hydrate(self, row: Any | None) -> Subscription | None:
        if row is None:
            return None
        topics = await self._rows(
            "SELECT topic FROM subscription_topics WHERE subscription_id=? ORDER BY topic",
            (row[0],),
        )
        return subscription_from_row(row, [t[0] for t in topics])

    async def token_hash(self, public_id: str) -> bytes | None:
        row = await self._row(
            "SELECT token_hash FROM subscriptions WHERE public_id=?", (public_id,)
        )
        return bytes(row[0]) if row is not None else None

    async def count_subscriptions(self) -> int:
        [row] = await self._scan_rows("SELECT COUNT(*) FROM subscriptions")
        return int(row[0])

    async def topic_counts(self) -> dict[str, int]:
        rows = await self._scan_rows(
            "SELECT topic, COUNT(*) FROM subscription_topics GROUP BY topic ORDER BY topic"
        )
        return {row[0]: row[1] for row in rows}

    # -- editors ---------------------------------------------------------------------
    async def list_editors(self) -> list[tuple[str, float, float | None]]:
        rows = await self._rows("SELECT name, created_at, revoked_at FROM editors ORDER BY name")
        return [(r[0], r[1], r[2]) for r in rows]

    async def editor_for_key(self, key_hash: bytes) -> str | None:
        row = await self._row(
            "SELECT name FROM editors WHERE key_hash=? AND revoked_at IS NULL", (key_hash,)
        )
        return str(row[0]) if row is not None else None

    # -- alerts ----------------------------------------------------------------------
    async def get_alert(self, public_id: str) -> Alert | None:
        return await self._alert_where("public_id=?", public_id)

    async def get_alert_by_id(self, alert_id: int) -> Alert | None:
        return await self._alert_where("id=?", alert_id)

    async def _alert_where(self, condition: str, *params: Any) -> Alert | None:
        row = await self._row(f"SELECT {ALERT_COLUMNS} FROM alerts WHERE {condition}", params)
        return alert_from_row(row) if row is not None else None

    async def list_alerts(self, limit: int) -> list[Alert]:
        rows = await self._rows(
            f"SELECT {ALERT_COLUMNS} FROM alerts ORDER BY id DESC LIMIT ?", (limit,)
        )
        return [alert_from_row(r) for r in rows]

    async def alert_status_counts(self) -> dict[str, int]:
        rows = await self._rows("SELECT status, COUNT(*) FROM alerts GROUP BY status")
        return {row[0]: row[1] for row in rows}

    async def delivery_histogram(self, alert_id: int) -> list[tuple[int, int]]:
        rows = await self._rows(
            "SELECT bucket_ms, count FROM delivery_times WHERE alert_id=? ORDER BY bucket_ms",
            (alert_id,),
        )
        return [(r[0], r[1]) for r in rows]

    async def next_due_time(self) -> float | None:
        row = await self._row("SELECT MIN(due_at) FROM deliveries_deferred")
        return float(row[0]) if row is not None and row[0] is not None else None
