"""One error shape for the whole API: `{"error": {"code", "message", "field"?}}`."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from ..store import TRANSIENT_ERRORS

log = logging.getLogger("pushdesk.api")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        field: str | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ):
        super().__init__(message)
        self.status, self.code, self.message, self.field = status, code, message, field
        self.headers = headers or {}
        self.extra = extra or {}

    def response(self) -> web.Response:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.field:
            body["field"] = self.field
        body.update(self.extra)
        return error_response(self.status, body, self.headers)


def invalid(field: str, message: str) -> ApiError:
    return ApiError(400, "invalid", f"{field}: {message}", field)


def error_response(
    status: int, error: dict[str, Any], headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        status=status,
        text=json.dumps({"error": error}),
        content_type="application/json",
        headers=headers,
    )


_HTTP_CODES = {
    404: ("not_found", "no such resource"),
    405: ("method_not_allowed", "method not allowed here"),
    413: ("too_large", "request body too large"),
    415: ("unsupported_media_type", "send JSON with Content-Type: application/json"),
}


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn every failure into the JSON error shape; never leak a traceback."""
    try:
        return await handler(request)
    except ApiError as exc:
        return exc.response()
    except web.HTTPException as exc:
        if exc.status < 400 or not request.path.startswith("/api/"):
            raise
        code, message = _HTTP_CODES.get(exc.status, ("http_error", exc.reason))
        headers = {k: v for k, v in exc.headers.items() if k in ("Allow", "Retry-After")}
        return error_response(exc.status, {"code": code, "message": message}, headers)
    except TRANSIENT_ERRORS:
        log.warning("database unavailable on %s %s", request.method, request.path, exc_info=True)
        return error_response(
            503,
            {"code": "unavailable", "message": "the database is busy; try again shortly"},
            {"Retry-After": "1"},
        )
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, {"code": "internal", "message": "internal server error"})
