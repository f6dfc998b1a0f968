"""Who may call the editors' routes, and the alert a path names: what several handlers share."""

from __future__ import annotations

from aiohttp import web

from ..store.models import Alert
from ..tokens import hash_secret
from .errors import ApiError
from .state import STORE


async def editor_name(request: web.Request) -> str:
    """The editor a bearer key belongs to; 401 for a missing, unknown or revoked key."""
    scheme, _, key = request.headers.get("Authorization", "").partition(" ")
    name = None
    if scheme.lower() == "bearer" and key.strip():
        name = await request.app[STORE].editor_for_key(hash_secret(key.strip()))
    if name is None:
        raise ApiError(
            401,
            "unauthorized",
            "an editor key is required: Authorization: Bearer <key>",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return name


async def alert_or_404(request: web.Request) -> Alert:
    """The alert the path's `{id}` names; 404 for an unknown one (ids longer than any we make
    are not looked up)."""
    alert_id = request.match_info["id"]
    alert = await request.app[STORE].get_alert(alert_id) if len(alert_id) <= 64 else None
    if alert is None:
        raise ApiError(404, "not_found", f"no alert {alert_id!r}")
    return alert
