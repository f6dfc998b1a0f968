"""Prometheus metrics. Counters live where things happen (the sender); gauges are read from the
store at scrape time, so every API node reports the same truth about shared state.

`pushdesk serve` sets PROMETHEUS_MULTIPROC_DIR before anything imports prometheus_client, so
the worker processes it starts write their counters where the API's /metrics reads them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

MESSAGES = Counter(
    "pushdesk_messages",
    "Push requests answered, by result and push-service origin",
    ["result", "origin"],
)
RETRIES = Counter("pushdesk_retries", "Requests retried, by push-service origin", ["origin"])
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
SEND_SECONDS = Histogram(
    "pushdesk_send_seconds",
    "Time a push service took to answer one request (connecting included, queueing not)",
    ["origin"],
    buckets=BUCKETS,
)
QUEUE_SECONDS = Histogram(
    "pushdesk_queue_seconds",
    "Time the requests that waited for a connection to their push service waited (the "
    "per-origin bound was reached)",
    ["origin"],
    buckets=BUCKETS,
)
CONTENT_TYPE = CONTENT_TYPE_LATEST
# Each origin label is a time series per result and histogram bucket. A few push services
# carry nearly every reader, but WNS alone spreads them over many hosts, and a subscription
# can name any allowed host: past this many, origins share the label `other`.
MAX_ORIGIN_LABELS = 32
_origin_labels: set[str] = set()


def origin_label(origin: str) -> str:
    """The metric label for a push-service origin: its name while few are known, else
    `other` (the first origins a worker meets are, in practice, the busy ones)."""
    if origin in _origin_labels:
        return origin
    if len(_origin_labels) < MAX_ORIGIN_LABELS:
        _origin_labels.add(origin)
        return origin
    return "other"


def forget_origin_labels() -> None:
    """Start naming origins afresh (tests, where every fake push service is a new origin)."""
    _origin_labels.clear()


@dataclass(frozen=True)
class StoreFigures:
    """What a scrape reads from the store (and the API's worker count)."""

    topics: dict[str, int]
    alerts: dict[str, int]
    work: dict[str, int]  # shards, deferred, unplanned
    workers: int


class StoreSnapshot(Collector):
    """Collector over figures read from the store just before a scrape."""

    def __init__(self, figures: StoreFigures):
        self.figures = figures

    def collect(self) -> Iterator[Metric]:
        topics = GaugeMetricFamily(
            "pushdesk_subscriptions", "Subscriptions by topic", labels=["topic"]
        )
        for topic, count in self.figures.topics.items():
            topics.add_metric([topic], count)
        yield topics
        statuses = GaugeMetricFamily("pushdesk_alerts", "Alerts by status", labels=["status"])
        for status, count in self.figures.alerts.items():
            statuses.add_metric([status], count)
        yield statuses
        work = self.figures.work
        yield GaugeMetricFamily(
            "pushdesk_shards_pending", "Shards not yet done", value=work["shards"]
        )
        yield GaugeMetricFamily(
            "pushdesk_deliveries_deferred",
            "Deliveries waiting (quiet hours, retries)",
            value=work["deferred"],
        )
        yield GaugeMetricFamily(
            "pushdesk_workers",
            "Fan-out workers this API runs or started",
            value=self.figures.workers,
        )


def render(figures: StoreFigures) -> bytes:
    snapshot = CollectorRegistry()
    snapshot.register(StoreSnapshot(figures))
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        counters = CollectorRegistry()
        MultiProcessCollector(counters)
    else:
        counters = REGISTRY
    return generate_latest(snapshot) + generate_latest(counters)
