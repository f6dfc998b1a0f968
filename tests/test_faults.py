"""Database faults during an alert: SQLite locked by another writer, PostgreSQL connections cut.

For every fault: no subscription lost, every reader ends delivered, none is sent it twice
outside the batch in flight, and the API answers 503 (not 500) while the database is away.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections import Counter

import asyncpg
import pytest

from tests.support.database import POSTGRES_URL
from tests.support.newsroom import counts_add_up
from tests.support.sending import fast_options

READERS = 1500


async def cut_connections() -> int:
    """Terminate every other connection to the test database, as a PostgreSQL restart does."""
    admin = await asyncpg.connect(POSTGRES_URL)
    try:
        return await admin.fetchval(
            "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    finally:
        await admin.close()


async def hold_sqlite_write_lock(path: str, seconds: float) -> None:
    def hold() -> None:
        conn = sqlite3.connect(path, timeout=30)
        conn.execute("BEGIN IMMEDIATE")
        import time

        time.sleep(seconds)
        conn.rollback()
        conn.close()

    await asyncio.to_thread(hold)


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
async def test_sqlite_locked_mid_alert(desk, push_service, settings):
    endpoints = await desk.readers(push_service, READERS, ["breaking"])
    push_service.delay = 0.003
    created = await (await desk.push({"title": "Locked"})).json()
    await desk.wait_started(created["id"])
    # Another process holds the write lock for longer than the store's busy timeout (10 s).
    path = settings.database.removeprefix("sqlite:///")
    holder = asyncio.create_task(hold_sqlite_write_lock(path, 11.5))
    await asyncio.sleep(10.5)
    body = {"subscription": {"endpoint": "https://fcm.googleapis.com/x", "keys": {}}}
    resp = await desk.client.post("/api/subscriptions", json=body)
    assert resp.status == 400  # validation needs no database: answered at once
    await holder
    alert = await desk.wait_final(created["id"], seconds=90)
    assert alert["status"] == "done" and counts_add_up(alert)
    assert alert["counts"]["delivered"] == READERS
    copies = Counter(len(push_service.messages(e)) for e in endpoints)
    assert copies[0] == 0 and sum(n for c, n in copies.items() if c > 1) <= 100
    assert await desk.store.count_subscriptions() == READERS


@pytest.mark.parametrize("database", ["postgres"], indirect=True)
async def test_postgres_connections_cut_mid_alert(desk, push_service, settings):
    endpoints = await desk.readers(push_service, READERS, ["breaking"])
    push_service.delay = 0.003
    created = await (await desk.push({"title": "Cut"})).json()
    await desk.wait_started(created["id"])
    for _ in range(3):  # as a restart does: every connection of the service is dropped
        assert await cut_connections() >= 1
        await asyncio.sleep(0.3)
    alert = await desk.wait_final(created["id"], seconds=90)
    assert alert["status"] == "done" and counts_add_up(alert)
    assert alert["counts"]["delivered"] == READERS
    copies = Counter(len(push_service.messages(e)) for e in endpoints)
    assert copies[0] == 0 and sum(n for c, n in copies.items() if c > 1) <= 3 * 100
    assert await desk.store.count_subscriptions() == READERS


@pytest.mark.parametrize("database", ["postgres"], indirect=True)
async def test_api_answers_503_while_the_database_is_away(desk, settings):
    await cut_connections()
    statuses = []
    for _ in range(50):  # until the pool has reconnected by itself
        resp = await desk.client.get("/api/alerts", headers=desk.auth)
        statuses.append(resp.status)
        if resp.status == 200:
            break
        assert resp.status == 503, await resp.text()
        assert resp.headers["Retry-After"] == "1"
        assert (await resp.json())["error"]["code"] == "unavailable"
        await asyncio.sleep(0.1)
    assert statuses[-1] == 200, statuses


@pytest.mark.parametrize("database", ["postgres"], indirect=True)
async def test_listen_notify_survives_a_dropped_connection(settings):
    """Workers hear of new alerts through LISTEN; a database restart must not leave them deaf."""
    from pushdesk.store import open_store
    from pushdesk.store.models import NewAlert

    store = await open_store(settings.database)
    woken = asyncio.Event()
    try:
        await store.listen_for_alerts(woken.set)
        first = store._listener
        await cut_connections()
        for _ in range(100):
            if store._listener is not first and not store._listener.is_closed():
                break
            await asyncio.sleep(0.05)
        assert store._listener is not first and not store._listener.is_closed()
        await asyncio.sleep(0.3)  # the reconnect wakes once by itself; then only NOTIFY may
        woken.clear()
        alert = NewAlert(
            "t", "https://n.example/", None, None, None, ["breaking"], 60, "high", True, "desk"
        )
        for _ in range(20):  # the pool's own connections were cut too: it reconnects
            try:
                await store.create_alert(alert, idempotency_window=0, duplicate_window=None)
                break
            except Exception:
                await asyncio.sleep(0.1)
        await asyncio.wait_for(woken.wait(), 5)
    finally:
        await store.close()


async def test_a_checkpoint_written_twice_counts_once(database):
    """A commit can succeed while its answer is lost with the connection (seen on CI after a
    cut): the worker retries the checkpoint, and the retry must not count the batch again."""
    from pushdesk.store import NewSubscription, open_store
    from pushdesk.store.models import Checkpoint, NewAlert, ReaderOutcome, ReaderResult

    store = await open_store(database)
    try:
        await store.add_vapid_key("k", "BPublicKey", "active")
        subs = [
            NewSubscription(
                f"https://fcm.googleapis.com/fcm/send/{n}", b"\4" * 65, b"a" * 16, "k", b"t"
            )
            for n in range(3)
        ]
        await store.import_subscriptions(subs)
        new = NewAlert(
            "Twice", "https://news.example/t", None, None, None, [], 60, "high", False, "d"
        )
        alert = (await store.create_alert(new, idempotency_window=60, duplicate_window=None)).alert
        await store.plan_next_alert(lambda lo, hi: [(lo, hi)])
        shard = await store.claim_shard("w", 30)
        assert shard is not None and shard.alert_id == alert.id
        cp = Checkpoint(
            shard.id,
            shard.alert_id,
            shard.hi,
            counts={"sent": 3, "delivered": 2, "failed": 1},
            outcomes=[ReaderOutcome(shard.hi, ReaderResult.FAILED, "400 Bad Request")],
        )
        assert await store.checkpoint(cp, "w", 30) == "sending"
        assert await store.checkpoint(cp, "w", 30) == "sending"
        counts = (await store.get_alert_by_id(alert.id)).counts
        assert (counts["sent"], counts["delivered"], counts["failed"]) == (3, 2, 1)
        assert await store.finish_shard(shard, "w")
        done = await store.get_alert_by_id(alert.id)
        assert done.status == "done" and done.counts["delivered"] == 2
    finally:
        await store.close()


@pytest.mark.parametrize("database", ["postgres"], indirect=True)
async def test_a_cancel_meeting_a_checkpoint_waits_instead_of_deadlocking(database):
    """A checkpoint locks its shard, then the alert row; a cancel must take them in the same
    order (seen on CI: cancel took the alert first and PostgreSQL broke the deadlock, 500)."""
    from pushdesk.store import NewSubscription, open_store
    from pushdesk.store.models import NewAlert

    store = await open_store(database)
    checkpoint = await asyncpg.connect(database)
    try:
        await store.add_vapid_key("k", "BPublicKey", "active")
        sub = NewSubscription("https://fcm.googleapis.com/fcm/send/1", b"\4" * 65, b"a", "k", b"t")
        await store.import_subscriptions([sub])
        new = NewAlert(
            "Stop", "https://news.example/s", None, None, None, [], 60, "high", False, "d"
        )
        alert = (await store.create_alert(new, idempotency_window=60, duplicate_window=None)).alert
        await store.plan_next_alert(lambda lo, hi: [(lo, hi)])
        shard = await store.claim_shard("w", 30)
        assert shard is not None
        async with checkpoint.transaction():  # as store.checkpoint does: shard, then alert
            await checkpoint.execute("SELECT 1 FROM alert_shards WHERE id=$1 FOR UPDATE", shard.id)
            cancel = asyncio.create_task(store.cancel_alert(alert.public_id))
            await asyncio.sleep(0.5)  # the cancel is now waiting for the shard row
            await checkpoint.execute("UPDATE alerts SET sent = sent + 1 WHERE id=$1", alert.id)
        cancelled = await asyncio.wait_for(cancel, 10)
        assert cancelled is not None and cancelled.status == "cancelled"
        assert cancelled.counts["sent"] == 1
    finally:
        await checkpoint.close()
        await store.close()


async def test_a_worker_whose_first_listen_fails_polls_and_listens_later(tmp_path, keyring):
    """The database may be restarting (or closing) just as a worker starts: it must not die."""
    from pushdesk.fanout.worker import FanoutWorker, WorkerOptions
    from pushdesk.store.sqlite import SQLiteStore
    from pushdesk.webpush.sender import Sender

    class DeafAtFirst(SQLiteStore):
        listens = 0

        async def listen_for_alerts(self, wake):
            self.listens += 1
            if self.listens == 1:
                raise OSError("the database system is starting up")

    store = await DeafAtFirst.open(tmp_path / "pushdesk.db")
    await store.migrate()
    sender = Sender(keyring, fast_options())
    worker = FanoutWorker(store, sender, WorkerOptions(poll_interval=0.02))
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        for _ in range(100):
            if store.listens >= 2:
                break
            await asyncio.sleep(0.02)
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)  # ends cleanly: no error kept from the failed listen
        await sender.close()
        await store.close()
    assert store.listens == 2
