"""Operators' commands: backup, stats, and VAPID key rotation end to end."""

from __future__ import annotations

import asyncio

from pushdesk.api.state import KEYRING
from pushdesk.store import open_store
from pushdesk.store.sqlite import SQLiteStore
from tests.support.cli_runner import pushdesk


async def test_backup_of_a_live_database(desk, push_service, settings, tmp_path):
    await desk.readers(push_service, 50, ["breaking", "world"])
    await desk.send_and_wait({"title": "Before the backup"})
    target = tmp_path / "backups" / "pushdesk-2026-11-25.db"
    run = await pushdesk(settings, "backup", str(target))
    if not settings.database.startswith("sqlite"):
        assert run.code == 1 and "pg_dump" in run.err and len(run.err.splitlines()) == 1
        return
    assert run.code == 0, run.err
    copy = await SQLiteStore.open(target)
    try:
        assert await copy.count_subscriptions() == 50
        assert len(await copy.list_alerts(5)) == 1
    finally:
        await copy.close()
    assert target.stat().st_mode & 0o777 == 0o600
    [key] = (tmp_path / "backups" / "pushdesk-2026-11-25.db.keys").glob("*.pem")
    assert key.stat().st_mode & 0o777 == 0o600
    again = await pushdesk(settings, "backup", str(target))
    assert again.code == 1 and "exists already" in again.err


async def test_stats_shows_readers_by_topic_and_recent_alerts(desk, push_service, settings):
    await desk.readers(push_service, 12, ["world"])
    await desk.readers(push_service, 3, ["sport"])
    await desk.send_and_wait({"title": "World summit", "topics": ["world"]})
    run = await pushdesk(settings, "stats")
    assert run.code == 0
    assert "readers: 15" in run.out
    assert "world            12" in run.out and "sport            3" in run.out
    assert "World summit" in run.out and "delivered 12/12" in run.out


async def test_key_rotation_end_to_end(desk, push_service, settings):
    old_key = desk.client.app[KEYRING].active.public_key
    old_id = desk.client.app[KEYRING].active_id

    async def reader(key: str):
        endpoint, keys = push_service.subscribe(bound_key=key)  # like Mozilla's v2 endpoints
        body = {"subscription": keys.subscription_json(endpoint)}
        created = await (await desk.client.post("/api/subscriptions", json=body)).json()
        return endpoint, created

    early = [await reader(old_key) for _ in range(3)]

    rotated = await pushdesk(settings, "keys", "rotate")
    assert rotated.code == 0
    new_id, new_key = rotated.out.split()
    await asyncio.sleep(1.1)  # the running service notices within a second
    resp = await desk.client.get("/api/vapid-public-key")
    assert (await resp.json())["publicKey"] == new_key
    late_endpoint, _ = await reader(new_key)

    first = await desk.send_and_wait({"title": "After rotation"})
    assert first["counts"]["delivered"] == 4 and first["counts"]["failed"] == 0
    auth_key = {
        e: push_service.received[e.rsplit("/", 1)[1]][-1].headers["Authorization"]
        for e in [*(e for e, _ in early), late_endpoint]
    }
    assert all(auth_key[e].endswith("k=" + old_key) for e, _ in early)
    assert auth_key[late_endpoint].endswith("k=" + new_key)

    refused = await pushdesk(settings, "keys", "retire", old_id)
    assert refused.code == 1 and "3 readers still use" in refused.err
    active = await pushdesk(settings, "keys", "retire", new_id)
    assert active.code == 1 and "active key" in active.err

    # Each reader's widget resubscribes with the new key and sends the renewed subscription.
    for _, created in early:
        endpoint, keys = push_service.subscribe(bound_key=new_key)
        resp = await desk.client.patch(
            f"/api/subscriptions/{created['id']}",
            json={"subscription": keys.subscription_json(endpoint)},
            headers={"Authorization": f"Bearer {created['token']}"},
        )
        assert resp.status == 200
    listed = await pushdesk(settings, "keys", "list")
    assert f"{old_id}\tretiring\t0 readers" in listed.out
    assert f"{new_id}\tactive\t4 readers" in listed.out
    assert (await pushdesk(settings, "keys", "retire", old_id)).code == 0

    second = await desk.send_and_wait({"title": "All moved", "url": "https://news.example/2"})
    assert second["counts"]["delivered"] == 4
    store = await open_store(settings.database)
    try:
        assert {k.id: k.status for k in await store.list_vapid_keys()} == {
            old_id: "retired",
            new_id: "active",
        }
    finally:
        await store.close()
    missing = await pushdesk(settings, "keys", "retire", "nope")
    assert missing.code == 1 and "no VAPID key" in missing.err
