"""Editors' API and the fan-out, end to end through the real API and the fake push service."""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import pytest

from pushdesk.api.state import KEYRING
from pushdesk.fanout import FanoutWorker, WorkerOptions
from pushdesk.webpush.sender import Sender, SenderOptions
from tests.support.newsroom import counts_add_up, quiet_now

STORY = "https://news.example/2026/11/25/election-result"


async def test_editor_key_is_required(desk):
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic x"}):
        resp = await desk.client.post(
            "/api/alerts", json={"title": "t", "url": STORY}, headers=headers
        )
        assert resp.status == 401
        assert (await resp.json())["error"]["code"] == "unauthorized"
    assert (await desk.client.get("/api/alerts")).status == 401
    await desk.store.revoke_editor("desk")
    assert (await desk.push({"title": "t"})).status == 401


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": STORY}, "title"),
        ({"title": "", "url": STORY}, "title"),
        ({"title": "x" * 301, "url": STORY}, "title"),
        ({"title": "T"}, "url"),
        ({"title": "T", "url": "http://news.example/x"}, "url"),
        ({"title": "T", "url": "javascript:alert(1)"}, "url"),
        ({"title": "T", "url": "https://news.example/" + "x" * 4000}, "url"),
        ({"title": "T", "url": STORY, "topics": []}, "topics"),
        ({"title": "T", "url": STORY, "topics": ["gardening"]}, "topics"),
        ({"title": "T", "url": STORY, "ttl": 86401}, "ttl"),
        ({"title": "T", "url": STORY, "ttl": "60"}, "ttl"),
        ({"title": "T", "url": STORY, "urgency": "urgent"}, "urgency"),
        ({"title": "T", "url": STORY, "respectQuietHours": "no"}, "respectQuietHours"),
        ({"title": "T", "url": STORY, "image": "ftp://x/y.png"}, "image"),
        ({"title": "T", "url": STORY, "dryRun": 1}, "dryRun"),
        ({"title": "T", "url": STORY, "colour": "red"}, "colour"),
    ],
)
async def test_bad_alerts_are_refused_and_nothing_is_stored(desk, body, field):
    resp = await desk.client.post("/api/alerts", json=body, headers=desk.auth)
    assert resp.status == 400
    assert (await resp.json())["error"]["field"] == field
    assert await desk.store.list_alerts(10) == []


async def test_bad_idempotency_key_and_limit(desk):
    resp = await desk.push({"title": "T"}, headers={"Idempotency-Key": "has space"})
    assert resp.status == 400
    resp = await desk.client.get("/api/alerts?limit=0", headers=desk.auth)
    assert resp.status == 400 and (await resp.json())["error"]["field"] == "limit"
    resp = await desk.client.get("/api/alerts/nope", headers=desk.auth)
    assert resp.status == 404


async def test_dry_run_counts_the_audience_and_stores_nothing(desk, push_service):
    await desk.readers(push_service, 30, ["breaking"])
    await desk.readers(push_service, 20, ["sport", "world"])
    resp = await desk.push({"title": "T", "topics": ["world", "breaking"], "dryRun": True})
    assert resp.status == 200
    assert await resp.json() == {"dryRun": True, "audience": 50, "topics": ["breaking", "world"]}
    assert await desk.store.list_alerts(10) == []
    await asyncio.sleep(0.2)
    assert sum(len(v) for v in push_service.received.values()) == 0


async def test_fan_out_reaches_exactly_the_matching_readers_once(desk, push_service):
    """A few thousand readers across topics and time zones; one alert to two topics."""
    politics = await desk.readers(push_service, 900, ["politics"], timezone="Europe/London")
    world = await desk.readers(push_service, 700, ["world", "breaking"], timezone="Asia/Tokyo")
    sport = await desk.readers(push_service, 800, ["sport"], timezone="America/New_York")
    both = await desk.readers(push_service, 300, ["politics", "world"], timezone="Australia/Sydney")
    gone = await desk.readers(push_service, 40, ["politics"])
    for endpoint in gone:
        push_service.unsubscribe(endpoint)

    resp = await desk.push(
        {
            "title": "Election called",
            "url": STORY,
            "body": "Results",
            "topics": ["politics", "world"],
        }
    )
    assert resp.status == 202
    created = await resp.json()
    assert created["audience"] == 900 + 700 + 300 + 40 and created["status"] == "queued"
    alert = await desk.wait_final(created["id"])

    assert alert["status"] == "done" and counts_add_up(alert)
    counts = alert["counts"]
    assert counts["delivered"] == 1900 and counts["removed"] == 40
    assert counts["failed"] == counts["skipped"] == counts["deferred"] == 0
    assert counts["sent"] == 1940
    for endpoint in politics + world + both:
        [message] = push_service.messages(endpoint)
        assert message["title"] == "Election called" and message["url"] == STORY
        assert message["body"] == "Results"
        assert message["tag"] == message["alertId"] == created["id"]
    assert all(push_service.messages(e) == [] for e in sport)
    # Topic header collapses repeats at the push service; it is the alert id.
    sample = push_service.received[politics[0].rsplit("/", 1)[1]][0]
    assert sample.headers["Topic"] == created["id"] and sample.headers["Urgency"] == "high"
    assert sample.headers["TTL"] == "3600"
    # Gone readers were deleted.
    assert await desk.store.count_subscriptions() == 900 + 700 + 800 + 300
    assert alert["startedAt"] and alert["finishedAt"] and alert["editor"] == "desk"


async def test_quiet_hours_defer_or_skip_and_caps_skip(desk, push_service, settings):
    quiet = quiet_now("Europe/Paris")
    awake = await desk.readers(push_service, 10, ["breaking"])
    sleeping = await desk.readers(
        push_service, 10, ["breaking"], timezone="Europe/Paris", quiet_hours=quiet
    )
    capped = await desk.readers(push_service, 10, ["breaking"], max_per_day=1)

    # A short TTL cannot outlast the night: sleeping readers are skipped.
    first = await desk.wait_final(
        (await (await desk.push({"title": "One", "ttl": 600})).json())["id"]
    )
    assert first["counts"]["delivered"] == 20 and first["counts"]["skipped"] == 10
    assert counts_add_up(first)

    # A long TTL: sleeping readers are deferred; capped readers have had their one today.
    second = await desk.send_and_wait({"title": "Two", "ttl": 86400, "url": STORY})
    c = second["counts"]
    assert c["delivered"] == 10 and c["deferred"] == 10 and c["skipped"] == 10
    assert counts_add_up(second)
    assert all(len(push_service.messages(e)) == 2 for e in awake)
    assert all(len(push_service.messages(e)) == 1 for e in capped)
    assert all(push_service.messages(e) == [] for e in sleeping)

    # An editor can override quiet hours for an alert.
    third = await desk.wait_final(
        (
            await (
                await desk.push({"title": "Three", "url": STORY + "/3", "respectQuietHours": False})
            ).json()
        )["id"]
    )
    assert third["counts"]["delivered"] == 20 and third["counts"]["skipped"] == 10

    # When the night is over, the deferred readers get the second alert.
    later = time.time() + 2 * 3600
    async with Sender(desk.client.app[KEYRING], SenderOptions(allow_loopback=True)) as sender:
        morning = FanoutWorker(desk.store, sender, clock=lambda: later)
        await morning.run_until_idle()
    done = await desk.alert(second["id"])
    assert done["counts"]["deferred"] == 0 and done["counts"]["delivered"] == 20
    assert counts_add_up(done)
    assert all([m["title"] for m in push_service.messages(e)] == ["Three", "Two"] for e in sleeping)


async def test_idempotency_key_replays_the_first_answer(desk, push_service):
    endpoints = await desk.readers(push_service, 5, ["breaking"])
    key = {"Idempotency-Key": "cms-article-4411"}
    first = await desk.push({"title": "Once"}, headers=key)
    again = await desk.push({"title": "Once"}, headers=key)
    assert first.status == again.status == 202
    assert await first.json() == await again.json()
    alert = await desk.wait_final((await first.json())["id"])
    third = await desk.push({"title": "Once"}, headers=key)
    assert (await third.json())["id"] == alert["id"]
    assert len(await desk.store.list_alerts(10)) == 1
    assert all(len(push_service.messages(e)) == 1 for e in endpoints)


async def test_audience_is_counted_after_workers_start_and_made_exact_when_done(desk, push_service):
    await desk.readers(push_service, 7, ["breaking"])
    await desk.readers(push_service, 2, ["sport"])
    resp = await desk.push({"title": "Counted", "topics": ["breaking"]})
    assert (await resp.json())["audience"] == 7
    done = await desk.wait_final((await resp.json())["id"])
    assert done["counts"]["audience"] == 7 and counts_add_up(done)
    # A count that arrives after the alert finished never replaces the exact figure.
    stored = await desk.store.get_alert(done["id"])
    await desk.store.complete_creation(stored.id, 99, {"late": True})
    assert (await desk.alert(done["id"]))["counts"]["audience"] == 7
    assert (await desk.store.get_alert(done["id"])).first_response == {"late": True}


async def test_an_alerts_first_message_goes_out_alone(desk, push_service):
    """Not queued behind the other lanes' connects and encryptions (time to first request):
    the next request leaves only once the first was answered."""
    await desk.readers(push_service, 20, ["breaking"])
    push_service.delay = 0.05
    done = await desk.send_and_wait({"title": "First"})
    assert done["counts"]["delivered"] == 20
    first, second, *rest = sorted(push_service.arrivals)
    assert second - first >= 0.045
    assert rest[-1] - second < 0.045  # then the lanes send the rest together


async def test_duplicate_guard_refuses_the_same_link_and_topics_within_ten_minutes(
    desk, push_service
):
    await desk.readers(push_service, 3, ["breaking", "world"])
    first = await (await desk.push({"title": "A", "url": STORY})).json()
    dup = await desk.push({"title": "A again", "url": STORY})
    assert dup.status == 409
    error = (await dup.json())["error"]
    assert error["code"] == "duplicate" and error["alert"] == first["id"]
    other_topics = await desk.push({"title": "A", "url": STORY, "topics": ["world"]})
    assert other_topics.status == 202
    forced = await desk.push({"title": "A, updated", "url": STORY, "force": True})
    assert forced.status == 202
    assert len(await desk.store.list_alerts(10)) == 3


async def test_duplicate_guard_holds_whatever_idempotency_keys_two_desks_send(desk, push_service):
    """The console always sends a key: two desks pushing the same story must not both go
    out. The key still replays one desk's own retry."""
    await desk.readers(push_service, 3, ["breaking"])
    first = await desk.push({"title": "A", "url": STORY}, headers={"Idempotency-Key": "desk-1"})
    assert first.status == 202
    retry = await desk.push({"title": "A", "url": STORY}, headers={"Idempotency-Key": "desk-1"})
    assert retry.status == 202 and (await retry.json())["id"] == (await first.json())["id"]
    second = await desk.push({"title": "A!", "url": STORY}, headers={"Idempotency-Key": "desk-2"})
    assert second.status == 409
    error = (await second.json())["error"]
    assert error["code"] == "duplicate" and error["alert"] == (await first.json())["id"]
    anyway = await desk.push(
        {"title": "A!", "url": STORY, "force": True}, headers={"Idempotency-Key": "desk-2b"}
    )
    assert anyway.status == 202
    assert len(await desk.store.list_alerts(10)) == 2


async def test_cancel_stops_the_rest(desk, push_service):
    endpoints = await desk.readers(push_service, 2000, ["breaking"])
    push_service.delay = 0.02  # a slow push service: the alert takes a while
    created = await (await desk.push({"title": "Wrong story"})).json()
    await desk.wait_started(created["id"])
    resp = await desk.client.post(f"/api/alerts/{created['id']}/cancel", headers=desk.auth)
    assert resp.status == 200 and (await resp.json())["status"] == "cancelled"
    at_cancel = sum(len(push_service.messages(e)) for e in endpoints)
    await asyncio.sleep(1.0)
    after = sum(len(push_service.messages(e)) for e in endpoints)
    assert after < len(endpoints)
    # at most the batches in flight (fast_runtime's batches are 100 readers)
    assert after - at_cancel <= WorkerOptions().batches_in_flight * 100
    alert = await desk.alert(created["id"])
    assert alert["status"] == "cancelled"
    again = await desk.client.post(f"/api/alerts/{created['id']}/cancel", headers=desk.auth)
    assert again.status == 409


async def test_alert_list_is_newest_first(desk, push_service):
    await desk.readers(push_service, 2, ["breaking"])
    for n in range(3):
        await desk.push({"title": f"Alert {n}", "url": f"{STORY}/{n}"})
    resp = await desk.client.get("/api/alerts?limit=2", headers=desk.auth)
    titles = [a["title"] for a in (await resp.json())["alerts"]]
    assert titles == ["Alert 2", "Alert 1"]


async def test_push_service_trouble_is_retried_and_counted(desk, push_service, other_push_service):
    endpoints = await desk.readers(push_service, 19, ["breaking"])
    [throttled] = await desk.readers(other_push_service, 1, ["breaking"])
    push_service.script(endpoints[0], (500, {}), (503, {}))
    push_service.script(endpoints[1], (400, {}))
    push_service.script(endpoints[2], (403, {}))
    # Beyond the worker's in-line wait: handed back and scheduled; that origin waits, not ours.
    other_push_service.script(throttled, (429, {"Retry-After": "30"}))
    alert = await desk.send_and_wait({"title": "T"})
    c = alert["counts"]
    assert c["delivered"] == 17 and c["failed"] == 2 and c["deferred"] == 1
    assert other_push_service.messages(throttled) == []
    assert counts_add_up(alert)
    assert len(push_service.messages(endpoints[0])) == 1
    statuses = Counter(push_service.statuses(endpoints[0]))
    assert statuses == {500: 1, 503: 1, 201: 1}
    # The 403 reader is marked and left out of the next alert, counted as skipped.
    nxt = await desk.send_and_wait({"title": "T2", "url": STORY + "/2"})
    assert nxt["counts"]["skipped"] == 1 and counts_add_up(nxt)
    assert push_service.statuses(endpoints[2]) == [403]


@pytest.mark.parametrize(
    ("body", "query"),
    [
        (b'{"title": ' + b"[" * 5000 + b"]" * 5000 + b"}", ""),  # RecursionError before
        (b'{"title": "\\ud800 explosion", "url": "https://news.example/s"}', ""),
        (b'{"title": "t", "url": "https://news.example/s", "body": "\\udfff"}', ""),
        (b'{"title": "t", "url": "https://news.example/s", "topics": ["\\ud800"]}', ""),
        (
            b'{"title": "t", "url": "https://news.example/s", "x": ' + b"[" * 40 + b"]" * 40 + b"}",
            "",
        ),
        (None, "?limit=²"),
        (None, "?limit=" + "9" * 5000),
        (None, "?limit=١٢"),
    ],
)
async def test_shapes_that_were_500s_are_400s(desk, body, query):
    """Deep JSON, lone surrogates (UnicodeEncodeError while building the payload) and limits
    str.isdigit() took but int() refused answered 500; each is a 400 and nothing is stored."""
    if body is None:
        resp = await desk.client.get(f"/api/alerts{query}", headers=desk.auth)
    else:
        resp = await desk.client.post(
            "/api/alerts", data=body, headers={**desk.auth, "Content-Type": "application/json"}
        )
    assert resp.status == 400, await resp.text()
    error = (await resp.json())["error"]
    assert error["code"] in ("invalid", "invalid_json") and error["message"]
    assert await desk.store.list_alerts(10) == []
