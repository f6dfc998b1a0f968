"""Engagement: beacons from the service worker, per-alert figures, timeline and export."""

from __future__ import annotations

import csv
import io
import itertools

import pytest

from pushdesk.engagement import bucket_ms, percentiles, timeline


async def reader_ids(desk, endpoints):
    subs = await desk.store.list_subscriptions(0, 100_000)
    by_endpoint = {s.endpoint: s.public_id for s in subs}
    return [by_endpoint[e] for e in endpoints]


async def beacon(desk, kind, alert_id, sub_id):
    return await desk.client.post(
        "/api/events", json={"type": kind, "alertId": alert_id, "subscriptionId": sub_id}
    )


async def test_beacons_are_validated_and_counted_once(desk, push_service):
    endpoints = await desk.readers(push_service, 3, ["breaking"])
    [first, *_] = await reader_ids(desk, endpoints)
    alert = await desk.send_and_wait({"title": "Beacons"})
    assert (await beacon(desk, "shown", alert["id"], first)).status == 204
    assert (await beacon(desk, "shown", alert["id"], first)).status == 204  # a repeat
    assert (await beacon(desk, "clicked", alert["id"], first)).status == 204
    cases = [
        ({"type": "opened", "alertId": alert["id"], "subscriptionId": first}, "type"),
        ({"type": "shown", "subscriptionId": first}, "alertId"),
        ({"type": "shown", "alertId": "nope", "subscriptionId": first}, "alertId"),
        ({"type": "shown", "alertId": alert["id"], "subscriptionId": "nope"}, "subscriptionId"),
        ({"type": "shown", "alertId": alert["id"], "subscriptionId": 5}, "subscriptionId"),
        (
            {"type": "shown", "alertId": alert["id"], "subscriptionId": first, "delivered": 9},
            "delivered",
        ),
    ]
    for body, field in cases:
        resp = await desk.client.post("/api/events", json=body)
        assert resp.status == 400 and (await resp.json())["error"]["field"] == field, body
    after = await desk.alert(alert["id"])
    assert after["counts"]["shown"] == 1 and after["counts"]["clicked"] == 1
    assert after["counts"]["delivered"] == 3  # a beacon changes nothing else
    assert after["clickRate"] == round(1 / 3, 4)


async def test_only_readers_in_the_audience_are_counted(desk, push_service):
    """Any subscription id used to count for any alert (a click rate of 667% was seen): only
    readers who followed the alert's topics when it was planned count."""
    breaking = await desk.readers(push_service, 2, ["breaking"])
    sport = await desk.readers(push_service, 3, ["sport"])
    alert = await desk.send_and_wait({"title": "Audience", "topics": ["breaking"]})
    later = await desk.readers(push_service, 1, ["breaking"])  # joined after it was planned
    [reader, *_] = await reader_ids(desk, breaking)
    outsiders = await reader_ids(desk, sport + later)
    assert (await beacon(desk, "clicked", alert["id"], reader)).status == 204
    for outsider in outsiders:
        resp = await beacon(desk, "clicked", alert["id"], outsider)
        assert resp.status == 400 and (await resp.json())["error"]["field"] == "subscriptionId"
    after = await desk.alert(alert["id"])
    assert after["counts"]["clicked"] == 1 and after["clickRate"] == 0.5


async def test_figures_timeline_and_export_from_a_real_fan_out(desk, push_service):
    endpoints = await desk.readers(push_service, 200, ["world"])
    ids = await reader_ids(desk, endpoints)
    alert = await desk.send_and_wait({"title": "Timeline", "topics": ["world"]})
    for sub_id in ids[:150]:
        assert (await beacon(desk, "shown", alert["id"], sub_id)).status == 204
    for sub_id in ids[:30]:
        assert (await beacon(desk, "clicked", alert["id"], sub_id)).status == 204
    got = await desk.alert(alert["id"])
    assert got["counts"]["shown"] == 150 and got["counts"]["clicked"] == 30
    assert got["clickRate"] == 0.15
    ms = got["deliveryMs"]
    assert 0 < ms["p50"] <= ms["p90"] <= ms["p99"] < 60_000

    resp = await desk.client.get(f"/api/alerts/{alert['id']}/timeline", headers=desk.auth)
    line = (await resp.json())["seconds"]
    assert line[-1] == {"second": line[-1]["second"], "delivered": 200, "shown": 150, "clicked": 30}
    for earlier, later in itertools.pairwise(line):
        assert all(later[k] >= earlier[k] for k in ("delivered", "shown", "clicked"))

    as_csv = await desk.client.get(
        f"/api/alerts/{alert['id']}/export?format=csv", headers=desk.auth
    )
    assert as_csv.status == 200 and as_csv.headers["Content-Type"].startswith("text/csv")
    assert "attachment" in as_csv.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(await as_csv.text())))
    assert rows[-1]["delivered"] == "200" and rows[-1]["clicked"] == "30"
    as_json = await (
        await desk.client.get(f"/api/alerts/{alert['id']}/export?format=json", headers=desk.auth)
    ).json()
    assert as_json["counts"]["shown"] == 150 and as_json["seconds"] == line
    bad = await desk.client.get(f"/api/alerts/{alert['id']}/export?format=xml", headers=desk.auth)
    assert bad.status == 400 and (await bad.json())["error"]["field"] == "format"
    unauth = await desk.client.get(f"/api/alerts/{alert['id']}/timeline")
    assert unauth.status == 401


@pytest.mark.parametrize(
    ("ms", "bucket"),
    [
        (0, 0),
        (9.9, 0),
        (10, 10),
        (9_999, 9_990),
        (10_050, 10_000),
        (99_999, 99_900),
        (123_456, 123_000),
        (-5, 0),
    ],
)
def test_buckets(ms, bucket):
    assert bucket_ms(ms) == bucket


def test_percentiles_and_timeline():
    histogram = [(0, 50), (10, 40), (2_000, 9), (15_000, 1)]
    assert percentiles(histogram) == {"p50": 10, "p90": 20, "p99": 2_010}
    assert percentiles([]) == {"p50": None, "p90": None, "p99": None}
    line = timeline(histogram, [(0, "shown", 5), (3, "clicked", 2)])
    assert line[0] == {"second": 0, "delivered": 90, "shown": 5, "clicked": 0}
    assert line[2] == {"second": 2, "delivered": 99, "shown": 5, "clicked": 0}
    assert line[-1] == {"second": 15, "delivered": 100, "shown": 5, "clicked": 2}
