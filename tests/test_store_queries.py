"""The SQLite store's queries on the path to an alert's first message read index ends, never
the whole table (a scan costs milliseconds per 100,000 readers, inside the write lock)."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from pushdesk.store import open_store
from pushdesk.store.models import Preferences
from pushdesk.store.sqlite import ID_RANGE


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


async def test_counts_run_beside_an_open_write_not_inside_it(tmp_path: Path):
    """A count queued on the writer's connection would run inside (and stretch) whatever write
    transaction is open; on its own connection it answers from what is committed."""
    from pushdesk.store import NewSubscription

    store = await open_store(f"sqlite:///{tmp_path / 'p.db'}")
    try:
        await store.add_vapid_key("k", "B", "active")
        reader = NewSubscription(
            "https://push.example/1", b"\4", b"a", "k", b"t", Preferences(topics=())
        )
        await store.import_subscriptions([reader])
        async with store._write() as db:  # a write in flight: the reader picks two topics
            await db.execute(
                "INSERT INTO subscription_topics (topic, subscription_id) VALUES ('world', 1), "
                "('sport', 1)"
            )
            assert await store.count_audience(["world"]) == 0
            assert await store.topic_counts() == {}
        assert await store.topic_counts() == {"sport": 1, "world": 1}
    finally:
        await store.close()


async def test_writes_beside_reads_while_another_process_commits(tmp_path: Path):
    """A read left open on the shared connection holds an old snapshot; a write begun beside
    it, after another process committed, fails at once with "database is locked" (SQLite's
    busy wait does not apply). Seen as a 503 on POST /api/alerts while workers planned."""
    from pushdesk.store import NewSubscription

    url = f"sqlite:///{tmp_path / 'p.db'}"
    api, worker = await open_store(url), await open_store(url)
    try:
        await api.add_vapid_key("k", "B", "active")

        async def reads() -> None:
            for _ in range(300):
                await api.list_vapid_keys()

        async def writes(store, prefix: str) -> None:
            for n in range(150):
                sub = NewSubscription(f"https://push.example/{prefix}{n}", b"\4", b"a", "k", b"t")
                await store.import_subscriptions([sub])

        await asyncio.gather(reads(), reads(), writes(api, "a"), writes(worker, "w"))
        assert await api.count_subscriptions() == 300
    finally:
        await worker.close()
        await api.close()
