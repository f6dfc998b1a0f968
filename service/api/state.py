"""Typed keys for what the app factory hands the handlers."""

from __future__ import annotations

from aiohttp import web

from ..config import Settings
from ..store import Store
from ..webpush.vapid import KeyRing

SETTINGS = web.AppKey("settings", Settings)
STORE = web.AppKey("store", Store)
KEYRING = web.AppKey("keyring", KeyRing)
