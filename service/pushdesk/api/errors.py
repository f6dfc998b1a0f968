"""One error shape for the whole API: `{"error": {"code", "message", "field"?}}`."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from ..errors import PushdeskError
from ..inputs import Invalid
from ..store import TRANSIENT_ERRORS, StorageProblem, storage_problem
from .state import STORAGE_TROUBLE

log = logging.getLogger("pushdesk.api")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ApiError(PushdeskError):
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


def error_response(
    status: int, error: dict[str, Any], headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        status=status,
        text=json.dumps({"error": error}),
        content_type="application/json",
        headers=headers,
    )


STORAGE_ANSWERS = {
    StorageProblem.DISK_FULL: lambda: error_response(
        507,
        {"code": "disk_full", "message": "the database's disk is full; nothing was stored"},
        {"Retry-After": "30"},
    ),
    StorageProblem.READ_ONLY: lambda: error_response(
        503,
        {"code": "read_only", "message": "the database is read-only; nothing was stored"},
        {"Retry-After": "30"},
    ),
}

_HTTP_CODES = {
    404: ("not_found", "no such resource"),
    405: ("method_not_allowed", "method not allowed here"),
    413: ("too_large", "request body too large"),
    415: ("unsupported_media_type", "send JSON with Content-Type: application/json"),
}


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn every failure into the JSON error shape; never leak a traceback. A database that
    refuses writes says why (disk full, read-only) rather than "busy, try again"; anything
    else unexpected is a bug of ours, logged as one."""
    try:
        return await handler(request)
    except ApiError as exc:
        return exc.response()
    except Invalid as exc:  # an input check's verdict: the field and why
        return ApiError(400, "invalid", str(exc), exc.field).response()
    except web.HTTPException as exc:
        if exc.status < 400 or not request.path.startswith("/api/"):
            raise
        code, message = _HTTP_CODES.get(exc.status, ("http_error", exc.reason))
        headers = {k: v for k, v in exc.headers.items() if k in ("Allow", "Retry-After")}
        return error_response(exc.status, {"code": code, "message": message}, headers)
    except Exception as exc:
        problem = storage_problem(exc)
        if problem is not None:
            log.error("database refused a write on %s %s: %s", request.method, request.path, exc)
            if STORAGE_TROUBLE in request.app:
                request.app[STORAGE_TROUBLE].seen(problem)
            return STORAGE_ANSWERS[problem]()
        if isinstance(exc, TRANSIENT_ERRORS):
            log.warning(
                "database unavailable on %s %s", request.method, request.path, exc_info=True
            )
            return error_response(
                503,
                {"code": "unavailable", "message": "the database is busy; try again shortly"},
                {"Retry-After": "1"},
            )
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, {"code": "internal", "message": "internal server error"})
