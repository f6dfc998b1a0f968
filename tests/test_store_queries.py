"""The SQLite store's queries on the path to an alert's first message read index ends, never
the whole table (a scan costs milliseconds per 100,000 readers, inside the write lock)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from service.store import open_store
from service.store.sqlite import ID_RANGE


async def test_planning_reads_the_id_range_from_the_index_ends(tmp_path: Path):
    path = tmp_path / "p.db"
    store = await open_store(f"sqlite:///{path}")
    await store.close()
    with sqlite3.connect(path) as db:
        plan = [row[3] for row in db.execute(f"EXPLAIN QUERY PLAN {ID_RANGE}")]
        assert plan.count("SEARCH subscriptions") == 2 and not any("SCAN" in p for p in plan[1:])
        db.executemany(
            "INSERT INTO vapid_keys (id, public_key, status, created_at) VALUES "
            "(?, ?, 'active', 0)",
            [("k", "B")],
        )
        db.executemany(
            "INSERT INTO subscriptions (id, public_id, endpoint, p256dh, auth, vapid_key_id, "
            "timezone, token_hash, created_at, updated_at) VALUES (?, ?, ?, x'04', x'00', 'k', "
            "'UTC', x'00', 0, 0)",
            [(n, f"p{n}", f"https://push.example/{n}") for n in (7, 3, 12)],
        )
        assert db.execute(ID_RANGE).fetchone() == (3, 12)
