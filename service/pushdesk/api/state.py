"""Typed keys for what the app factory hands the handlers."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from ..config import Settings
from ..store import StorageProblem, Store
from ..webpush.vapid import KeyRing

SETTINGS = web.AppKey("settings", Settings)
STORE = web.AppKey("store", Store)
KEYRING = web.AppKey("keyring", KeyRing)
# Called after an alert is stored, so in-process workers start without waiting for a poll.
WAKE_WORKERS: web.AppKey[Callable[[], None]] = web.AppKey("wake_workers")
# How many fan-out workers this process runs or started (for /metrics).
WORKER_COUNT: web.AppKey[Callable[[], int]] = web.AppKey("worker_count")
# False while worker processes keep failing to start (for /readyz).
WORKERS_READY: web.AppKey[Callable[[], bool]] = web.AppKey("workers_ready")
# The keyring, refreshed from the store when another process rotated keys (at most once a second).
CURRENT_KEYS: web.AppKey[Callable[[], Awaitable[KeyRing]]] = web.AppKey("current_keys")


@dataclass
class StorageTrouble:
    """The last write the database refused for a reason an operator must fix (disk full,
    read-only), as this process saw it: /readyz fails while it is recent."""

    problem: StorageProblem | None = None
    at: float = 0.0
    RECENT = 30.0  # seconds

    def seen(self, problem: StorageProblem) -> None:
        self.problem, self.at = problem, time.monotonic()

    def current(self) -> StorageProblem | None:
        recent = time.monotonic() - self.at < self.RECENT
        return self.problem if recent else None


STORAGE_TROUBLE = web.AppKey("storage_trouble", StorageTrouble)
