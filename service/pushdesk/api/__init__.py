"""HTTP handlers: validate, call the store, answer. Nothing here sends a push."""

from __future__ import annotations

from aiohttp import web

from . import alerts, engagement, openapi, ops, readers


def setup_api(app: web.Application) -> None:
    app.add_routes(readers.routes)
    app.add_routes(alerts.routes)
    app.add_routes(engagement.routes)
    app.add_routes(ops.routes)
    app.add_routes(openapi.routes)
