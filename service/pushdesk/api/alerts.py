"""Handlers for editors: push an alert, follow it, list and cancel alerts."""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from ..engagement import percentiles
from ..inputs import invalid, parse_article_url, parse_text, parse_topics, require_object
from ..limits import (
    DEFAULT_TTL,
    MAX_ALERT_TTL,
    MAX_BODY_TEXT,
    MAX_IDEMPOTENCY_KEY,
    MAX_LIST,
    MAX_TITLE,
)
from ..store.models import AlertStatus, CreationOutcome, NewAlert
from ..views import alert_json
from ..webpush.payload import Message, PayloadTooLarge, build_payload
from ..webpush.sender import URGENCIES
from .access import alert_or_404, editor_name
from .errors import ApiError
from .state import SETTINGS, STORE, WAKE_WORKERS
from .validation import read_json

MAX_ALERT_BODY = 16 * 1024
IDEMPOTENCY_WINDOW = 24 * 3600
DUPLICATE_WINDOW = 10 * 60
IDEMPOTENCY_KEY = re.compile(rf"^[\x21-\x7e]{{1,{MAX_IDEMPOTENCY_KEY}}}$")
LIMIT = re.compile(r"[0-9]{1,4}", re.ASCII)  # str.isdigit() took '²', which int() refuses
ALERT_FIELDS = {
    "title",
    "url",
    "body",
    "topics",
    "icon",
    "image",
    "ttl",
    "urgency",
    "respectQuietHours",
    "dryRun",
    "force",
}
routes = web.RouteTableDef()


def _flag(body: dict[str, Any], name: str, default: bool) -> bool:
    value = body.get(name, default)
    if not isinstance(value, bool):
        raise invalid(name, "must be true or false")
    return value


def parse_alert(body: dict[str, Any], request: web.Request, editor: str) -> NewAlert:
    settings = request.app[SETTINGS]
    topics = parse_topics(body.get("topics", ["breaking"]), settings)
    if not topics:
        raise invalid("topics", "name at least one topic")
    ttl = body.get("ttl", DEFAULT_TTL)
    if isinstance(ttl, bool) or not isinstance(ttl, int) or not 0 <= ttl <= MAX_ALERT_TTL:
        raise invalid("ttl", f"must be whole seconds from 0 to {MAX_ALERT_TTL}")
    urgency = body.get("urgency", "high")
    if urgency not in URGENCIES:
        raise invalid("urgency", f"must be one of {', '.join(URGENCIES)}")
    key = request.headers.get("Idempotency-Key")
    if key is not None and not IDEMPOTENCY_KEY.match(key):
        raise invalid("Idempotency-Key", "must be 1-255 visible ASCII characters")
    return NewAlert(
        title=parse_text(body.get("title"), "title", MAX_TITLE, required=True) or "",
        url=parse_article_url(body.get("url")) or "",
        body=parse_text(body.get("body"), "body", MAX_BODY_TEXT),
        icon=parse_article_url(body.get("icon"), "icon", required=False),
        image=parse_article_url(body.get("image"), "image", required=False),
        topics=topics,
        ttl=ttl,
        urgency=urgency,
        respect_quiet_hours=_flag(body, "respectQuietHours", True),
        editor=editor,
        idempotency_key=key,
    )


def check_fits(new: NewAlert) -> None:
    """Refuse, at the editor's desk, an alert whose link alone cannot fit a push message."""
    sample_id = "x" * 16
    try:
        build_payload(
            Message(
                title=new.title,
                url=new.url,
                body=new.body,
                icon=new.icon,
                image=new.image,
                tag=sample_id,
                alert_id=sample_id,
                timestamp=10**13,
            )
        )
    except PayloadTooLarge as exc:
        raise invalid("url", f"too long for a push message: {exc}") from None


def summary(alert_json: dict[str, Any]) -> dict[str, Any]:
    keys = ("id", "status", "title", "url", "topics", "createdAt")
    return {**{k: alert_json[k] for k in keys}, "audience": alert_json["counts"]["audience"]}


@routes.post("/api/alerts")
async def create_alert(request: web.Request) -> web.Response:
    editor = await editor_name(request)
    body = require_object(await read_json(request, MAX_ALERT_BODY), "body", ALERT_FIELDS)
    new = parse_alert(body, request, editor)
    check_fits(new)
    force = _flag(body, "force", False)
    store = request.app[STORE]
    if _flag(body, "dryRun", False):
        audience = await store.count_audience(new.topics)
        return web.json_response({"dryRun": True, "audience": audience, "topics": new.topics})
    creation = await store.create_alert(
        new,
        idempotency_window=IDEMPOTENCY_WINDOW,
        # The key replays one editor's retry; the guard keeps the same story from readers
        # twice, whatever key two desks sent: it applies to every new alert unless forced.
        duplicate_window=None if force else DUPLICATE_WINDOW,
    )
    alert = creation.alert
    if creation.outcome is CreationOutcome.DUPLICATE:
        raise ApiError(
            409,
            "duplicate",
            f"the same link and topics were pushed at {alert_json(alert)['createdAt']} "
            f'(alert {alert.public_id}); send with "force": true to push again',
            extra={"alert": alert.public_id},
        )
    if creation.outcome is CreationOutcome.REPLAYED:
        return web.json_response(alert.first_response or summary(alert_json(alert)), status=202)
    # Workers start now; the editor's answer waits for the count (80 ms at a million readers),
    # the first reader does not.
    request.app[WAKE_WORKERS]()
    audience = await store.count_audience(new.topics)
    response = {**summary(alert_json(alert)), "audience": audience}
    await store.complete_creation(alert.id, audience, response if new.idempotency_key else None)
    return web.json_response(response, status=202)


@routes.get("/api/alerts")
async def list_alerts(request: web.Request) -> web.Response:
    await editor_name(request)
    raw = request.query.get("limit", "20")
    if not LIMIT.fullmatch(raw) or not 1 <= int(raw) <= MAX_LIST:
        raise invalid("limit", f"must be a whole number from 1 to {MAX_LIST}")
    alerts = await request.app[STORE].list_alerts(int(raw))
    return web.json_response({"alerts": [alert_json(a) for a in alerts]})


@routes.get("/api/alerts/{id}")
async def get_alert(request: web.Request) -> web.Response:
    await editor_name(request)
    alert = await alert_or_404(request)
    histogram = await request.app[STORE].delivery_histogram(alert.id)
    return web.json_response({**alert_json(alert), "deliveryMs": percentiles(histogram)})


@routes.post("/api/alerts/{id}/cancel")
async def cancel_alert(request: web.Request) -> web.Response:
    await editor_name(request)
    alert = await alert_or_404(request)
    if alert.status is AlertStatus.CANCELLED:
        raise ApiError(409, "finished", f"alert {alert.public_id} is already {alert.status}")
    cancelled = await request.app[STORE].cancel_alert(alert.public_id)
    if cancelled is None or cancelled.status is not AlertStatus.CANCELLED:
        raise ApiError(409, "finished", f"alert {alert.public_id} has finished sending")
    return web.json_response(alert_json(cancelled))
