"""The aiohttp application factory: wires settings, store, keys, API, web files and workers."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from .api import setup_api
from .api.errors import error_middleware
from .api.http import cors_middleware, security_headers
from .api.state import KEYRING, SETTINGS, STORE
from .config import Settings
from .store import open_store
from .vapid_keys import load_keyring
from .web import setup_web

MAX_BODY = 64 * 1024


def create_app(settings: Settings) -> web.Application:
    app = web.Application(
        middlewares=[cors_middleware, error_middleware],
        client_max_size=MAX_BODY,
    )
    app[SETTINGS] = settings
    app.on_response_prepare.append(security_headers)
    app.cleanup_ctx.append(_store_and_keys)
    setup_api(app)
    setup_web(app)
    return app


async def _store_and_keys(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    store = await open_store(settings.database)
    try:
        app[STORE] = store
        app[KEYRING] = await load_keyring(
            store, settings.keys_dir, settings.vapid_subject, create_first=True
        )
        yield
    finally:
        await store.close()
