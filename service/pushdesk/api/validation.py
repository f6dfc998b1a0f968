"""Reading a request's JSON body: type, size and syntax, before `inputs` checks its fields."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ..inputs import decode_json
from .errors import ApiError


async def read_json(request: web.Request, max_bytes: int) -> Any:
    """The request body as JSON, with 415/413/400 answers for the wrong type, size or syntax."""
    if request.content_type != "application/json":
        raise ApiError(
            415, "unsupported_media_type", "send JSON with Content-Type: application/json"
        )
    if request.content_length is not None and request.content_length > max_bytes:
        raise ApiError(413, "too_large", f"request body is over {max_bytes} bytes")
    raw = await request.content.read(max_bytes + 1)
    if len(raw) > max_bytes:
        raise ApiError(413, "too_large", f"request body is over {max_bytes} bytes")
    try:
        return decode_json(raw)
    except ValueError as exc:
        raise ApiError(400, "invalid_json", f"request body {exc}") from None
