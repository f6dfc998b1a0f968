"""Engagement: the service worker's beacons, and what editors read from them."""

from __future__ import annotations

import csv
import io

from aiohttp import web

from ..engagement import percentiles, timeline
from ..inputs import invalid, require_object
from ..store.models import Alert, EventKind, EventRecord
from ..views import alert_json
from .access import alert_or_404, editor_name
from .state import STORE
from .validation import read_json

MAX_EVENT_BODY = 1024
EVENT_KINDS = {kind.value for kind in EventKind}
routes = web.RouteTableDef()


@routes.post("/api/events")
async def event(request: web.Request) -> web.Response:
    """A beacon: counted once per reader, alert and type; it can change nothing else."""
    body = require_object(
        await read_json(request, MAX_EVENT_BODY), "body", {"type", "alertId", "subscriptionId"}
    )
    if not isinstance(body.get("type"), str) or body["type"] not in EVENT_KINDS:
        raise invalid("type", "must be shown or clicked")
    kind = EventKind(body["type"])
    for field in ("alertId", "subscriptionId"):
        value = body.get(field)
        if not isinstance(value, str) or not 0 < len(value) <= 64:
            raise invalid(field, "must be an id")
    result = await request.app[STORE].record_event(body["alertId"], body["subscriptionId"], kind)
    if result is EventRecord.UNKNOWN_ALERT:
        raise invalid("alertId", "no such alert")
    if result is EventRecord.UNKNOWN_SUBSCRIPTION:
        raise invalid("subscriptionId", "no such subscription")
    if result is EventRecord.NOT_IN_AUDIENCE:  # a click rate of 667% was one forged beacon away
        raise invalid("subscriptionId", "was not among this alert's readers")
    return web.Response(status=204)


async def alert_figures(
    request: web.Request,
) -> tuple[Alert, list[tuple[int, int]], list[tuple[int, str, int]]]:
    await editor_name(request)
    alert = await alert_or_404(request)
    store = request.app[STORE]
    histogram = await store.delivery_histogram(alert.id)
    return alert, histogram, await store.event_seconds(alert.id)


@routes.get("/api/alerts/{id}/timeline")
async def alert_timeline(request: web.Request) -> web.Response:
    alert, histogram, events = await alert_figures(request)
    return web.json_response(
        {
            "id": alert.public_id,
            "createdAt": alert_json(alert)["createdAt"],
            "deliveryMs": percentiles(histogram),
            "seconds": timeline(histogram, events),
        }
    )


@routes.get("/api/alerts/{id}/export")
async def alert_export(request: web.Request) -> web.Response:
    fmt = request.query.get("format", "json")
    if fmt not in ("json", "csv"):
        raise invalid("format", "must be csv or json")
    alert, histogram, events = await alert_figures(request)
    seconds = timeline(histogram, events)
    if fmt == "json":
        data = {**alert_json(alert), "deliveryMs": percentiles(histogram), "seconds": seconds}
        return web.json_response(data, headers=_download(alert.public_id, "json"))
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["second", "delivered", "shown", "clicked"])
    for row in seconds:
        writer.writerow([row["second"], row["delivered"], row["shown"], row["clicked"]])
    return web.Response(
        text=out.getvalue(), content_type="text/csv", headers=_download(alert.public_id, "csv")
    )


def _download(alert_id: str, ext: str) -> dict[str, str]:
    return {"Content-Disposition": f'attachment; filename="alert-{alert_id}.{ext}"'}
