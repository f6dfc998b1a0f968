"""The OpenAPI 3 description of the whole HTTP API, served at /api/openapi.json.

Kept true by tests: every route the app serves is described here and every operation here is
served, and schemathesis fuzzes the running service from this document.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from .. import __version__
from ..limits import (
    MAX_ALERT_TTL,
    MAX_BODY_TEXT,
    MAX_ENDPOINT_LENGTH,
    MAX_IDEMPOTENCY_KEY,
    MAX_LIST,
    MAX_PER_DAY,
    MAX_TITLE,
)
from ..store.models import COUNT_FIELDS, AlertStatus
from ..webpush.sender import URGENCIES

routes = web.RouteTableDef()

HHMM = {"type": "string", "pattern": "^([01][0-9]|2[0-3]):[0-5][0-9]$"}
B64URL = {"type": "string", "pattern": "^[A-Za-z0-9_-]+=*$"}

ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "field": {"type": "string"},
            },
        }
    },
}
PREFERENCES = {
    "topics": {"type": "array", "items": {"type": "string"}},
    "timezone": {"type": "string", "example": "Europe/London"},
    "quietHours": {
        "oneOf": [
            {
                "type": "object",
                "required": ["start", "end"],
                "properties": {"start": HHMM, "end": HHMM},
                "additionalProperties": False,
            },
            {"type": "null"},
        ]
    },
    "maxPerDay": {
        "oneOf": [{"type": "integer", "minimum": 1, "maximum": MAX_PER_DAY}, {"type": "null"}]
    },
    "language": {"oneOf": [{"type": "string"}, {"type": "null"}]},
}
PUSH_SUBSCRIPTION = {
    "type": "object",
    "required": ["endpoint", "keys"],
    "properties": {
        "endpoint": {"type": "string", "format": "uri", "maxLength": MAX_ENDPOINT_LENGTH},
        "expirationTime": {"oneOf": [{"type": "number"}, {"type": "null"}]},
        "keys": {
            "type": "object",
            "required": ["p256dh", "auth"],
            "properties": {"p256dh": B64URL, "auth": B64URL},
            "additionalProperties": False,
        },
    },
    "additionalProperties": False,
}
SUBSCRIPTION_STATE: dict[str, Any] = {
    "type": "object",
    "required": ["id", "topics", "timezone", "quietHours", "maxPerDay", "language"],
    "properties": {"id": {"type": "string"}, **PREFERENCES},
}
COUNTS = {
    "type": "object",
    "properties": {name: {"type": "integer"} for name in COUNT_FIELDS},
}
ALERT = {
    "type": "object",
    "required": ["id", "title", "url", "topics", "status", "counts", "createdAt", "editor"],
    "properties": {
        "id": {"type": "string"},
        "title": {"type": "string"},
        "url": {"type": "string"},
        "topics": {"type": "array", "items": {"type": "string"}},
        "status": {"enum": [status.value for status in AlertStatus]},
        "counts": COUNTS,
        "clickRate": {"oneOf": [{"type": "number"}, {"type": "null"}]},
        "deliveryMs": {"type": "object"},
        "createdAt": {"type": "string"},
        "startedAt": {"oneOf": [{"type": "string"}, {"type": "null"}]},
        "finishedAt": {"oneOf": [{"type": "string"}, {"type": "null"}]},
        "editor": {"type": "string"},
    },
}
NEW_ALERT = {
    "type": "object",
    "required": ["title", "url"],
    "properties": {
        "title": {"type": "string", "minLength": 1, "maxLength": MAX_TITLE},
        "url": {"type": "string", "format": "uri"},
        "body": {"type": "string", "maxLength": MAX_BODY_TEXT},
        "topics": {"type": "array", "items": {"type": "string"}, "minItems": 1},
        "icon": {"type": "string", "format": "uri"},
        "image": {"type": "string", "format": "uri"},
        "ttl": {"type": "integer", "minimum": 0, "maximum": MAX_ALERT_TTL},
        "urgency": {"enum": list(URGENCIES)},
        "respectQuietHours": {"type": "boolean"},
        "dryRun": {"type": "boolean"},
        "force": {"type": "boolean"},
    },
    "additionalProperties": False,
}


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*codes: int) -> dict[str, Any]:
    return {str(code): _json({"$ref": "#/components/schemas/Error"}, "Error") for code in codes}


def _body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
READER: list[dict[str, list[str]]] = [{"readerToken": []}]
EDITOR: list[dict[str, list[str]]] = [{"editorKey": []}]


def build_spec() -> dict[str, Any]:
    sub_state = {"$ref": "#/components/schemas/SubscriptionState"}
    alert = {"$ref": "#/components/schemas/Alert"}
    created = {**SUBSCRIPTION_STATE, "required": [*SUBSCRIPTION_STATE["required"], "token"]}
    created["properties"] = {**SUBSCRIPTION_STATE["properties"], "token": {"type": "string"}}
    subscribe_body = {
        "type": "object",
        "required": ["subscription"],
        "properties": {"subscription": PUSH_SUBSCRIPTION, **PREFERENCES},
        "additionalProperties": False,
    }
    patch_body = {
        "type": "object",
        "properties": {"subscription": PUSH_SUBSCRIPTION, **PREFERENCES},
        "additionalProperties": False,
    }
    paths: dict[str, Any] = {
        "/api/vapid-public-key": {
            "get": {
                "summary": "The VAPID public key, for pushManager.subscribe()",
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "required": ["publicKey"],
                            "properties": {"publicKey": B64URL},
                        }
                    )
                },
            }
        },
        "/api/topics": {
            "get": {
                "summary": "The topic catalogue",
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "properties": {
                                "topics": {
                                    "type": "array",
                                    "items": {
                                        "type": "object",
                                        "properties": {
                                            "id": {"type": "string"},
                                            "name": {"type": "string"},
                                            "default": {"type": "boolean"},
                                        },
                                    },
                                }
                            },
                        }
                    )
                },
            }
        },
        "/api/subscriptions": {
            "post": {
                "summary": "Subscribe a browser, or refresh one by its endpoint",
                "description": (
                    "A known endpoint with other keys is 409 unless the request carries that "
                    "reader's token (Authorization: Bearer)."
                ),
                "requestBody": _body(subscribe_body),
                "responses": {
                    "200": _json(created, "Known endpoint, updated"),
                    "201": _json(created, "Created"),
                    **_errors(400, 409, 413, 415, 429, 503, 507),
                },
            }
        },
        "/api/subscriptions/{id}": {
            "parameters": [ID],
            "get": {
                "summary": "A reader's preferences",
                "security": READER,
                "responses": {"200": _json(sub_state), **_errors(401, 404, 429)},
            },
            "patch": {
                "summary": "Change preferences, or move to a renewed browser subscription",
                "security": READER,
                "requestBody": _body(patch_body),
                "responses": {
                    "200": _json(sub_state),
                    **_errors(400, 401, 404, 409, 413, 415, 429),
                },
            },
            "delete": {
                "summary": "Unsubscribe",
                "security": READER,
                "responses": {"204": {"description": "Deleted"}, **_errors(401, 404, 429)},
            },
        },
        "/api/alerts": {
            "post": {
                "summary": "Push an alert (or count its audience with dryRun)",
                "security": EDITOR,
                "parameters": [
                    {
                        "name": "Idempotency-Key",
                        "in": "header",
                        "required": False,
                        "schema": {"type": "string", "maxLength": MAX_IDEMPOTENCY_KEY},
                    }
                ],
                "requestBody": _body(NEW_ALERT),
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "properties": {
                                "dryRun": {"type": "boolean"},
                                "audience": {"type": "integer"},
                            },
                        },
                        "Dry run",
                    ),
                    "202": _json(
                        {
                            "type": "object",
                            "required": ["id", "status", "audience"],
                            "properties": {
                                "id": {"type": "string"},
                                "status": {"type": "string"},
                                "audience": {"type": "integer"},
                            },
                        },
                        "Accepted",
                    ),
                    **_errors(400, 401, 409, 413, 415),
                },
            },
            "get": {
                "summary": "Recent alerts, newest first",
                "security": EDITOR,
                "parameters": [
                    {
                        "name": "limit",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIST},
                    }
                ],
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "properties": {"alerts": {"type": "array", "items": alert}},
                        }
                    ),
                    **_errors(400, 401),
                },
            },
        },
        "/api/alerts/{id}": {
            "parameters": [ID],
            "get": {
                "summary": "An alert with live counts",
                "security": EDITOR,
                "responses": {"200": _json(alert), **_errors(401, 404)},
            },
        },
        "/api/alerts/{id}/cancel": {
            "parameters": [ID],
            "post": {
                "summary": "Stop what is not yet sent",
                "security": EDITOR,
                "responses": {"200": _json(alert), **_errors(401, 404, 409)},
            },
        },
        "/api/alerts/{id}/timeline": {
            "parameters": [ID],
            "get": {
                "summary": "Cumulative delivered, shown and clicked per second",
                "security": EDITOR,
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "properties": {
                                "deliveryMs": {"type": "object"},
                                "seconds": {"type": "array", "items": {"type": "object"}},
                            },
                        }
                    ),
                    **_errors(401, 404),
                },
            },
        },
        "/api/alerts/{id}/export": {
            "parameters": [ID],
            "get": {
                "summary": "The alert and its timeline as a download",
                "security": EDITOR,
                "parameters": [
                    {
                        "name": "format",
                        "in": "query",
                        "required": False,
                        "schema": {"enum": ["json", "csv"]},
                    }
                ],
                "responses": {
                    "200": {
                        "description": "OK",
                        "content": {
                            "application/json": {"schema": {"type": "object"}},
                            "text/csv": {"schema": {"type": "string"}},
                        },
                    },
                    **_errors(400, 401, 404),
                },
            },
        },
        "/api/events": {
            "post": {
                "summary": "The service worker reports a notification shown or clicked",
                "requestBody": _body(
                    {
                        "type": "object",
                        "required": ["type", "alertId", "subscriptionId"],
                        "properties": {
                            "type": {"enum": ["shown", "clicked"]},
                            "alertId": {"type": "string"},
                            "subscriptionId": {"type": "string"},
                        },
                        "additionalProperties": False,
                    }
                ),
                "responses": {
                    "204": {"description": "Counted (once)"},
                    **_errors(400, 413, 415, 429),
                },
            }
        },
        "/api/openapi.json": {
            "get": {"summary": "This document", "responses": {"200": _json({"type": "object"})}}
        },
        "/healthz": {"get": {"summary": "Alive", "responses": {"200": _json({"type": "object"})}}},
        "/readyz": {
            "get": {
                "summary": "Database reachable, keys loaded, migrations current",
                "responses": {"200": _json({"type": "object"}), "503": _json({"type": "object"})},
            }
        },
        "/metrics": {
            "get": {
                "summary": "Prometheus metrics",
                "responses": {
                    "200": {
                        "description": "OK",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    }
                },
            }
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "pushdesk",
            "version": __version__,
            "description": "Self-hosted Web Push for news publishers",
        },
        "paths": paths,
        "components": {
            "schemas": {"Error": ERROR, "SubscriptionState": SUBSCRIPTION_STATE, "Alert": ALERT},
            "securitySchemes": {
                "readerToken": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "The token POST /api/subscriptions returned",
                },
                "editorKey": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An editor key from `pushdesk editors add`",
                },
            },
        },
    }


@routes.get("/api/openapi.json")
async def openapi(request: web.Request) -> web.Response:
    return web.json_response(build_spec())
