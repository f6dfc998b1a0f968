"""Operators' view: health, readiness, Prometheus metrics and JSON logs."""

from __future__ import annotations

import json
import logging

from prometheus_client.parser import text_string_to_metric_families

from pushdesk.api.state import STORE
from pushdesk.logs import JsonFormatter
from pushdesk.metrics import MAX_ORIGIN_LABELS, forget_origin_labels, origin_label


async def test_healthz_and_readyz(desk):
    resp = await desk.client.get("/healthz")
    assert resp.status == 200 and await resp.json() == {"status": "ok"}
    resp = await desk.client.get("/readyz")
    assert resp.status == 200
    assert await resp.json() == {
        "status": "ready",
        "checks": {
            "database": True,
            "keys": True,
            "migrations": True,
            "workers": True,
            "storage": True,
        },
    }


async def test_readyz_fails_when_the_database_is_gone(desk):
    await desk.client.app[STORE].close()
    resp = await desk.client.get("/readyz")
    assert resp.status == 503
    body = await resp.json()
    assert body["status"] == "not ready" and body["checks"]["database"] is False
    assert (await desk.client.get("/healthz")).status == 200


def samples(text: str) -> dict[tuple[str, tuple], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


async def test_metrics_after_an_alert(desk, push_service):
    forget_origin_labels()  # earlier tests' fake push services took the named labels
    endpoints = await desk.readers(push_service, 30, ["breaking"])
    await desk.readers(push_service, 5, ["sport"])
    push_service.unsubscribe(endpoints[0])
    push_service.script(endpoints[1], (503, {}))
    await desk.send_and_wait({"title": "Metrics"})
    resp = await desk.client.get("/metrics")
    assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/plain")
    found = samples(await resp.text())
    origin = push_service.base
    assert found[("pushdesk_subscriptions", (("topic", "breaking"),))] == 29
    assert found[("pushdesk_subscriptions", (("topic", "sport"),))] == 5
    assert found[("pushdesk_alerts", (("status", "done"),))] == 1
    assert found[("pushdesk_shards_pending", ())] == 0
    assert found[("pushdesk_workers", ())] == 1
    delivered = found[("pushdesk_messages_total", (("origin", origin), ("result", "delivered")))]
    assert delivered >= 29
    assert found[("pushdesk_messages_total", (("origin", origin), ("result", "gone")))] >= 1
    assert found[("pushdesk_retries_total", (("origin", origin),))] >= 1
    assert found[("pushdesk_send_seconds_count", (("origin", origin),))] >= 31


def test_log_lines_are_json_with_the_alert_id():
    record = logging.makeLogRecord(
        {
            "name": "pushdesk.fanout",
            "levelname": "INFO",
            "msg": "worker %s finished shard %s",
            "args": ("w1", 7),
            "alert": "abc123",
        }
    )
    entry = json.loads(JsonFormatter().format(record))
    assert entry["message"] == "worker w1 finished shard 7" and entry["alert"] == "abc123"
    assert entry["level"] == "INFO" and entry["logger"] == "pushdesk.fanout"
    assert entry["time"].endswith("Z")


def test_origin_labels_are_bounded():
    """Readers may name many push-service hosts (WNS alone has many): metric labels stay
    bounded, the rest counted as `other`."""
    forget_origin_labels()
    names = [origin_label(f"https://h{n}.notify.windows.com") for n in range(MAX_ORIGIN_LABELS + 5)]
    assert len(set(names)) == MAX_ORIGIN_LABELS + 1 and names[-1] == "other"
    assert origin_label("https://h0.notify.windows.com") == "https://h0.notify.windows.com"
    forget_origin_labels()
