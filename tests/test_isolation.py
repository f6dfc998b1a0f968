"""One reader, one answer or one departure never stops an alert (both stores, real fan-out).

Each test stores readers or scripts answers that used to wedge an alert (an exception out of a
batch, a checkpoint that could not be written), and checks the alert ends, every good reader
gets exactly one message, and the counts add up.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections import Counter
from typing import Any

import pytest

from pushdesk.api.state import KEYRING
from pushdesk.app import create_app
from pushdesk.fanout.worker import FIRST_BATCH
from pushdesk.store import NewSubscription
from pushdesk.store.models import Preferences
from pushdesk.tokens import hash_secret, new_secret
from pushdesk.webpush import sender as sender_module
from pushdesk.webpush.breaker import BreakerOptions
from tests.support.helpers import BrowserKeys
from tests.support.newsroom import Newsroom, counts_add_up
from tests.support.sending import fast_runtime


async def open_desk(aiohttp_client, settings, **runtime: Any) -> Newsroom:
    return await Newsroom.open(await aiohttp_client(create_app(settings, fast_runtime(**runtime))))


async def store_raw_readers(desk: Newsroom, endpoints: list[str]) -> None:
    """Readers stored as an older release (or a bug) might have: past the API's checks."""
    key_id = desk.client.app[KEYRING].active_id
    items = []
    for endpoint in endpoints:
        keys = BrowserKeys.generate()
        items.append(
            NewSubscription(
                endpoint, keys.p256dh, keys.auth, key_id, hash_secret(new_secret()),
                Preferences(topics=("breaking",)),
            )
        )  # fmt: skip
    created, _ = await desk.store.import_subscriptions(items)
    assert created == len(endpoints)


async def wait_settled(desk: Newsroom, alert_id: str, seconds: float = 60) -> dict[str, Any]:
    """The alert is final and nothing of it is deferred any more."""
    deadline = time.monotonic() + seconds
    while True:
        alert = await desk.alert(alert_id)
        if alert["status"] in ("done", "failed", "cancelled") and not alert["counts"]["deferred"]:
            return alert
        assert time.monotonic() < deadline, f"not settled: {alert}"
        await asyncio.sleep(0.05)


def one_each(push_service, endpoints: list[str]) -> bool:
    return all(len(push_service.messages(e)) == 1 for e in endpoints)


async def test_unsignable_endpoints_and_hostile_answers_stop_nobody(desk, push_service):
    """An empty port and an IPv6 literal (py_vapid refuses both audiences), a Retry-After of
    '²' and a 400 whose JSON nests past the recursion limit used to raise out of the batch:
    the alert stayed `sending` and its good readers got it again every lease."""
    port = push_service.base.rsplit(":", 1)[1]
    await store_raw_readers(
        desk, ["http://127.0.0.1:/push/empty-port", f"http://[::1]:{port}/push/ipv6-literal"]
    )
    good = await desk.readers(push_service, 20, ["breaking"])
    push_service.script(good[0], (503, {"Retry-After": "²"}))
    push_service.script(good[1], (400, {}, b"[" * 1024))
    alert = await desk.send_and_wait({"title": "Still goes out"})
    c = alert["counts"]
    assert alert["status"] == "done" and counts_add_up(alert)
    assert c["audience"] == 22 and c["delivered"] == 19 and c["failed"] == 3
    assert one_each(push_service, [e for e in good if e != good[1]])
    assert push_service.statuses(good[0]) == [503, 201]  # retried after a backoff, once


async def test_a_bug_meets_one_reader_it_is_logged_and_counted_internal(
    desk, push_service, monkeypatch, caplog
):
    endpoints = await desk.readers(push_service, 12, ["breaking"])
    poisoned = endpoints[5]
    real_encrypt = sender_module.encrypt

    def encrypt(plaintext: bytes, p256dh: bytes, auth: bytes) -> bytes:
        if push_service.endpoints[poisoned.rsplit("/", 1)[1]].keys.p256dh == p256dh:
            raise RuntimeError("a bug of ours")
        return real_encrypt(plaintext, p256dh, auth)

    monkeypatch.setattr(sender_module, "encrypt", encrypt)
    with caplog.at_level(logging.ERROR, logger="pushdesk.fanout"):
        alert = await desk.send_and_wait({"title": "One bug, one reader"})
    assert alert["status"] == "done" and counts_add_up(alert)
    assert alert["counts"]["delivered"] == 11 and alert["counts"]["failed"] == 1
    assert one_each(push_service, [e for e in endpoints if e != poisoned])
    [record] = [r for r in caplog.records if "internal error for reader" in r.getMessage()]
    assert record.alert == alert["id"] and "RuntimeError: a bug of ours" in record.getMessage()


async def test_a_down_push_service_gets_at_most_the_attempt_limit_per_reader(
    aiohttp_client, settings, push_service
):
    """Every answer 503 for the whole alert, and every retry handed back as a deferral (the
    worker waits in line for none): attempts carry across deferrals, the origin's breaker
    holds most readers back, and each reader ends `failed` with the reason."""
    desk = await open_desk(
        aiohttp_client,
        settings,
        inline_wait=0,
        sender={"max_attempts": 5, "breaker": BreakerOptions(cooldown=0.02, max_cooldown=0.05)},
    )
    endpoints = await desk.readers(push_service, 10, ["breaking"])
    for endpoint in endpoints:
        push_service.script(endpoint, *[(503, {})] * 50)
    resp = await desk.push({"title": "Into an outage"})
    alert = await wait_settled(desk, (await resp.json())["id"])
    assert alert["counts"]["failed"] == 10 and counts_add_up(alert)
    assert alert["status"] in ("done", "failed")
    per_reader = Counter(eid for eid, _ in push_service.requests)
    assert max(per_reader.values()) <= 5
    assert sum(per_reader.values()) <= 50


async def test_a_reader_who_leaves_mid_send_costs_nothing(desk, push_service):
    """Deleted while their message is in flight (one with a daily cap, one whose answer
    defers them): the checkpoint still writes, and nothing is sent again."""
    endpoints = await desk.readers(push_service, 10, ["breaking"], max_per_day=5)
    push_service.script(endpoints[1], (429, {"Retry-After": "30"}))
    push_service.delay = 0.3
    resp = await desk.push({"title": "Leaving"})
    alert_id = (await resp.json())["id"]
    await push_service.arrived(10)
    leaving = {s.endpoint: s.public_id for s in await desk.store.list_subscriptions()}
    assert await desk.store.delete_subscription(leaving[endpoints[0]])
    assert await desk.store.delete_subscription(leaving[endpoints[1]])
    alert = await wait_settled(desk, alert_id)
    assert alert["status"] == "done" and counts_add_up(alert)
    assert alert["counts"]["delivered"] == 9 and alert["counts"]["skipped"] == 1
    assert len(push_service.requests) == 10  # no batch was sent twice


async def test_cancel_keeps_the_outcomes_of_the_batches_in_flight(desk, push_service):
    """A cancel is noticed at the next checkpoint; the batches already sent are still written
    (their messages went out), nothing more is sent, and the rest of the readers get nothing."""
    endpoints = await desk.readers(push_service, 1000, ["breaking"])
    push_service.delay = 0.4
    resp = await desk.push({"title": "Stop it"})
    alert_id = (await resp.json())["id"]
    await push_service.arrived(1)
    cancel = await desk.client.post(f"/api/alerts/{alert_id}/cancel", headers=desk.auth)
    assert cancel.status == 200
    deadline = time.monotonic() + 15  # the batches in flight answer and checkpoint
    while True:
        await asyncio.sleep(0.2)
        alert = await desk.alert(alert_id)
        received = sum(len(push_service.messages(e)) for e in endpoints)
        settled = received and alert["counts"]["delivered"] == received
        if settled or time.monotonic() > deadline:
            break
    assert alert["status"] == "cancelled" and 0 < received < len(endpoints)
    assert alert["counts"]["delivered"] == received
    await asyncio.sleep(1.0)  # and nothing more goes out
    assert sum(len(push_service.messages(e)) for e in endpoints) == received


async def test_a_failed_alert_with_retries_pending_can_be_cancelled(
    desk, push_service, other_push_service
):
    refused = await desk.readers(push_service, 3, ["breaking"])
    for endpoint in refused:
        push_service.script(endpoint, (400, {}))
    [waiting] = await desk.readers(other_push_service, 1, ["breaking"])
    other_push_service.script(waiting, (429, {"Retry-After": "30"}))
    alert = await desk.send_and_wait({"title": "Nobody got it"})
    assert alert["status"] == "failed" and alert["counts"]["deferred"] == 1
    cancel = await desk.client.post(f"/api/alerts/{alert['id']}/cancel", headers=desk.auth)
    assert cancel.status == 200
    after = await cancel.json()
    assert after["status"] == "cancelled" and after["counts"]["deferred"] == 0
    assert after["counts"]["skipped"] == 1 and counts_add_up(after)


async def test_a_retried_message_carries_the_ttl_that_is_left(
    aiohttp_client, settings, push_service
):
    """Handed back for a retry 2 s later, the message asks the push service to keep it only
    for what is left of the alert's life, not its whole TTL again."""
    desk = await open_desk(aiohttp_client, settings, inline_wait=0)
    [endpoint] = await desk.readers(push_service, 1, ["breaking"])
    push_service.script(endpoint, (503, {"Retry-After": "2"}))
    resp = await desk.push({"title": "Late", "ttl": 3600})
    alert = await wait_settled(desk, (await resp.json())["id"])
    assert alert["counts"]["delivered"] == 1
    [received] = push_service.received[endpoint.rsplit("/", 1)[1]]
    assert 3590 <= int(received.headers["TTL"]) <= 3598


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
async def test_a_checkpoint_that_cannot_be_written_whole_is_written_with_its_counts(
    desk, push_service, monkeypatch
):
    """A write that retrying will not mend (a constraint, a bug): the batch is closed with its
    counts only, its deferred readers counted failed, and nothing is sent again."""
    endpoints = await desk.readers(push_service, 10, ["breaking"])
    push_service.script(endpoints[0], (429, {"Retry-After": "30"}))  # a deferral in the batch
    real_checkpoint = desk.store.checkpoint
    refused: list[int] = []

    async def checkpoint(cp, owner, lease):
        if cp.deferrals and not refused:
            refused.append(cp.shard_id)
            raise sqlite3.IntegrityError("a constraint the batch breaks")
        return await real_checkpoint(cp, owner, lease)

    monkeypatch.setattr(desk.store, "checkpoint", checkpoint)
    alert = await desk.send_and_wait({"title": "Counts only"})
    c = alert["counts"]
    assert refused and alert["status"] == "done" and counts_add_up(alert)
    assert c["delivered"] == 9 and c["failed"] == 1 and c["deferred"] == 0
    assert alert["error"].startswith("internal: IntegrityError")
    assert len(push_service.requests) == 10  # the batch was not sent again


async def test_a_slow_reader_holds_back_no_batch_behind_it(aiohttp_client, settings, push_service):
    """Batches overlap: while one reader's push service takes its time, the next batches go
    out (up to `batches_in_flight`); checkpoints still close in order, so the alert ends with
    every reader sent exactly once and counts that add up. Before, each batch waited for its
    slowest reader: nothing behind the slow one left until it answered."""
    desk = await open_desk(aiohttp_client, settings, batch_size=10, batches_in_flight=5)
    endpoints = await desk.readers(push_service, FIRST_BATCH + 60, ["breaking"])
    slow = endpoints[FIRST_BATCH]  # the first reader of the second batch
    push_service.slow_seconds = 5.0
    push_service.script(slow, "slow")
    resp = await desk.push({"title": "Overlapping batches"})
    assert resp.status == 202
    await push_service.arrived(FIRST_BATCH + 40)  # batches 2 to 5 are out
    assert push_service.statuses(slow) == []  # while the slow reader still waits
    alert = await wait_settled(desk, (await resp.json())["id"])
    assert alert["status"] == "done" and counts_add_up(alert)
    assert alert["counts"]["delivered"] == len(endpoints) and one_each(push_service, endpoints)


async def test_the_next_shard_starts_while_the_last_batches_of_one_finish(
    aiohttp_client, settings, push_service
):
    """A shard's readers all read, its worker claims the next shard while the first one's last
    batches finish in the background: a slow reader at the end of a shard holds back nobody in
    the next one. Both shards still close, every reader sent once."""
    desk = await open_desk(aiohttp_client, settings, batch_size=10, shard_width=100)
    endpoints = await desk.readers(push_service, 200, ["breaking"])
    slow = endpoints[97]  # in the first shard's last batch
    push_service.slow_seconds = 5.0
    push_service.script(slow, "slow")
    resp = await desk.push({"title": "Next shard"})
    assert resp.status == 202
    await push_service.arrived(130)  # 30 readers of the second shard are out
    assert push_service.statuses(slow) == []  # while the slow reader still waits
    alert = await wait_settled(desk, (await resp.json())["id"])
    assert alert["status"] == "done" and counts_add_up(alert)
    assert alert["counts"]["delivered"] == len(endpoints) and one_each(push_service, endpoints)
