"""Cross-cutting HTTP behaviour: CORS for the news site's pages, and security headers."""

from __future__ import annotations

from aiohttp import web

from .errors import Handler, error_response
from .state import SETTINGS

CORS_METHODS = "GET, POST, PATCH, DELETE, OPTIONS"
CORS_HEADERS = "Content-Type, Authorization, Idempotency-Key"
# Pages carry no inline script or style: everything comes from our own origin.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: https:; "
    "connect-src 'self'; worker-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'self'; object-src 'none'"
)


@web.middleware
async def cors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Allow the configured site origins (and only them) to call /api/ from their pages."""
    origin = request.headers.get("Origin")
    allowed = (
        origin is not None
        and request.path.startswith("/api/")
        and origin.lower() in request.app[SETTINGS].site_origins
    )
    if request.method == "OPTIONS" and request.path.startswith("/api/"):
        if allowed or origin is None:  # a preflight we allow, or a plain OPTIONS
            response: web.StreamResponse = web.Response(status=204)
        else:
            response = error_response(
                403, {"code": "origin_not_allowed", "message": f"{origin} may not call this API"}
            )
    else:
        response = await handler(request)
    if allowed:
        assert origin is not None
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Allow-Methods"] = CORS_METHODS
        response.headers["Access-Control-Allow-Headers"] = CORS_HEADERS
        response.headers["Access-Control-Max-Age"] = "600"
    response.headers.add("Vary", "Origin")
    return response


async def security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """An on_response_prepare hook: file responses only know their content type by then."""
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "strict-origin-when-cross-origin")
    if response.content_type == "text/html":
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        response.headers.setdefault("X-Frame-Options", "DENY")
