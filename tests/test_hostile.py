"""Property: whatever a push service answers, and whoever leaves mid-send, an alert ends.

Hypothesis draws readers, each with a script of hostile answers (garbage status lines, odd
Retry-After values, deep or huge bodies, resets, hangs past the timeout, 429/5xx storms, 404/410)
before the push service behaves, and some readers who unsubscribe while their message is in
flight. The real fan-out worker sends the alert through a real SQLite store. Always: the alert
reaches a final status within a bound, its counts add up, every reader whose script lets a
message through within the attempt limit receives exactly one, and no reader is asked more
often than the attempt limit.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from collections import Counter
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pushdesk.fanout.worker import FanoutWorker, WorkerOptions
from pushdesk.store import NewSubscription, open_store
from pushdesk.store.models import NewAlert, Preferences
from pushdesk.tokens import hash_secret, new_secret
from pushdesk.webpush.breaker import BreakerOptions
from pushdesk.webpush.sender import Sender, SenderOptions
from pushdesk.webpush.vapid import KeyRing, VapidSigner, generate_key_file, load_key_file
from tests.support.fake_push import FakePushService
from tests.support.hostile import HOSTILE, Step, expected

MAX_ATTEMPTS = 4
BOUND = 60.0  # seconds an alert may take to settle, however hostile the push service


readers = st.lists(
    st.tuples(st.lists(st.sampled_from(HOSTILE), max_size=5), st.booleans()),
    min_size=1,
    max_size=10,
)


@settings(
    max_examples=int(os.environ.get("PUSHDESK_HOSTILE_EXAMPLES", "25")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(readers=readers, leaving=st.integers(0, 100))
def test_a_hostile_push_service_never_stops_an_alert(readers, leaving):
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(scenario(Path(tmp), readers, leaving))


async def scenario(tmp: Path, readers: list[tuple[list[Step], bool]], leaving: int) -> None:
    push = await FakePushService().start()
    push.hang_seconds = 0.6
    store = await open_store(f"sqlite:///{tmp / 'pushdesk.db'}")
    key_id, public = generate_key_file(tmp / "keys")
    await store.add_vapid_key(key_id, public, "active")
    keyring = KeyRing(
        {key_id: VapidSigner(key_id, load_key_file(tmp / "keys", key_id), "mailto:d@n.example")},
        key_id,
    )
    scripts: dict[str, list[Step]] = {}
    leavers: dict[str, str] = {}  # endpoint id -> public id, for readers who unsubscribe
    subscriptions = []
    for n, (script, leaves) in enumerate(readers):
        endpoint, keys = push.subscribe()
        push.script(endpoint, *(step.script for step in script))
        endpoint_id = endpoint.rsplit("/", 1)[1]
        scripts[endpoint_id] = list(script)
        if leaves and n * 37 % 100 < leaving:
            leavers[endpoint_id] = endpoint
        subscriptions.append(
            NewSubscription(
                endpoint,
                keys.p256dh,
                keys.auth,
                key_id,
                hash_secret(new_secret()),
                Preferences(topics=("breaking",)),
            )
        )
    await store.import_subscriptions(subscriptions)
    by_endpoint = {s.endpoint: s.public_id for s in await store.list_subscriptions()}

    departed: set[str] = set()

    async def unsubscribe_in_flight(endpoint_id: str) -> None:
        if endpoint_id in leavers:
            departed.add(endpoint_id)
            await store.delete_subscription(by_endpoint[leavers.pop(endpoint_id)])

    push.on_request = unsubscribe_in_flight
    options = SenderOptions(
        allow_loopback=True,
        backoff_base=0.01,
        backoff_cap=0.05,
        total_timeout=0.3,
        connect_timeout=0.3,
        max_attempts=MAX_ATTEMPTS,
        breaker=BreakerOptions(cooldown=0.02, max_cooldown=0.1),
    )
    sender = Sender(keyring, options)
    worker = FanoutWorker(
        store, sender, WorkerOptions(poll_interval=0.02, batch_size=4, inline_wait=0.2)
    )
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        new = NewAlert("Hostile", "https://news.example/h", None, None, None, ["breaking"],
                       120, "high", False, "desk")  # fmt: skip
        alert = (await store.create_alert(new, idempotency_window=0, duplicate_window=None)).alert
        worker.wake()
        deadline = time.monotonic() + BOUND
        while True:
            final = await store.get_alert_by_id(alert.id)
            assert final is not None
            if final.status in ("done", "failed") and final.counts["deferred"] == 0:
                break
            assert time.monotonic() < deadline, f"not settled in {BOUND} s: {final}"
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
        await sender.close()
        await store.close()
        await push.stop()

    c = final.counts
    assert c["audience"] == len(readers)
    assert c["audience"] == sum(c[k] for k in ("delivered", "removed", "failed", "skipped"))
    requests = Counter(endpoint_id for endpoint_id, _ in push.requests)
    assert push.refusals == []  # every message was signed and encrypted right
    for endpoint_id, script in scripts.items():
        received = len(push.received[endpoint_id])
        assert requests[endpoint_id] <= MAX_ATTEMPTS, (endpoint_id, script)
        assert received <= 1, (endpoint_id, script)
        if expected(script, MAX_ATTEMPTS) == "delivered" and endpoint_id not in departed:
            assert received == 1, (endpoint_id, script, c)
