"""Static browser files: the service worker, the embeddable widget, the demo and the console."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

STATIC = Path(__file__).parent / "static"
PAGES = {"/": "index.html", "/console": "console.html"}


def _file(name: str, headers: dict[str, str] | None = None):
    async def handler(request: web.Request) -> web.FileResponse:
        return web.FileResponse(STATIC / name, headers=headers)

    return handler


def setup_web(app: web.Application) -> None:
    for path, name in PAGES.items():
        app.router.add_get(path, _file(name, {"Cache-Control": "no-cache"}))
    # The worker must never be cached, or readers keep an old one for a day; root scope.
    app.router.add_get(
        "/sw.js",
        _file("sw.js", {"Cache-Control": "no-cache", "Service-Worker-Allowed": "/"}),
    )
    app.router.add_get("/pushdesk.js", _file("pushdesk.js", {"Cache-Control": "no-cache"}))
    app.router.add_static("/static/", STATIC, append_version=False)
