"""Typed keys for what the app factory hands the handlers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from ..config import Settings
from ..store import Store
from ..webpush.vapid import KeyRing

SETTINGS = web.AppKey("settings", Settings)
STORE = web.AppKey("store", Store)
KEYRING = web.AppKey("keyring", KeyRing)
# Called after an alert is stored, so in-process workers start without waiting for a poll.
WAKE_WORKERS = web.AppKey("wake_workers", Callable[[], None])
# How many fan-out workers this process runs or started (for /metrics).
WORKER_COUNT = web.AppKey("worker_count", Callable[[], int])
# False while worker processes keep failing to start (for /readyz).
WORKERS_READY = web.AppKey("workers_ready", Callable[[], bool])
# The keyring, refreshed from the store when another process rotated keys (at most once a second).
CURRENT_KEYS = web.AppKey("current_keys", Callable[[], Awaitable[KeyRing]])
