"""Handlers for browsers: the VAPID key, the topic catalogue, subscriptions and preferences."""

from __future__ import annotations

from aiohttp import web

from ..inputs import (
    PREFERENCE_JSON,
    invalid,
    parse_preferences,
    parse_push_subscription,
    require_object,
)
from ..store import EndpointTaken, NewSubscription
from ..tokens import hash_secret, new_secret, secret_matches
from ..views import preferences_json
from .errors import ApiError
from .state import CURRENT_KEYS, SETTINGS, STORE
from .validation import read_json

MAX_SUBSCRIPTION_BODY = 8 * 1024
routes = web.RouteTableDef()


@routes.get("/api/vapid-public-key")
async def vapid_public_key(request: web.Request) -> web.Response:
    keyring = await request.app[CURRENT_KEYS]()
    return web.json_response({"publicKey": keyring.active.public_key})


@routes.get("/api/topics")
async def topics(request: web.Request) -> web.Response:
    catalogue = request.app[SETTINGS].topics
    return web.json_response(
        {"topics": [{"id": t.id, "name": t.name, "default": t.default} for t in catalogue]}
    )


@routes.post("/api/subscriptions")
async def subscribe(request: web.Request) -> web.Response:
    """Create, or refresh by endpoint; either way the reader gets a new management token."""
    settings = request.app[SETTINGS]
    body = require_object(
        await read_json(request, MAX_SUBSCRIPTION_BODY), "body", {"subscription", *PREFERENCE_JSON}
    )
    if "subscription" not in body:
        raise invalid("subscription", "is required (PushSubscription.toJSON())")
    endpoint, p256dh, auth = parse_push_subscription(body["subscription"], settings)
    prefs = parse_preferences(body, settings)
    token = new_secret()
    keyring = await request.app[CURRENT_KEYS]()
    new = NewSubscription(
        endpoint=endpoint,
        p256dh=p256dh,
        auth=auth,
        vapid_key_id=keyring.active_id,
        token_hash=hash_secret(token),
        preferences=prefs,
        default_topics=tuple(settings.default_topics),
    )
    try:
        sub, created = await request.app[STORE].upsert_subscription(new, presented_proof(request))
    except EndpointTaken:
        # Someone who knows a reader's endpoint, but not their keys or token: no takeover,
        # and nothing of that reader in the answer.
        raise ApiError(
            409,
            "conflict",
            "that endpoint is subscribed with other keys; send the reader's token to change them",
            "subscription.keys",
        ) from None
    return web.json_response(
        {**preferences_json(sub), "token": token}, status=201 if created else 200
    )


def presented_proof(request: web.Request) -> bytes | None:
    """The hash of the bearer token this request carries, if it carries one we could issue."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or not token.isascii():
        return None
    return hash_secret(token)


def not_found() -> ApiError:
    """The same answer for a wrong token and an unknown id: nothing tells which ids exist."""
    return ApiError(404, "not_found", "no subscription with that id and token")


async def _authorised(request: web.Request) -> str:
    """The path's public id, once the bearer token matches; otherwise 401 or 404."""
    public_id = request.match_info["id"]
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(
            401,
            "unauthorized",
            "send Authorization: Bearer <token>",
            headers={"WWW-Authenticate": "Bearer"},
        )
    stored = await request.app[STORE].token_hash(public_id) if len(public_id) <= 64 else None
    if not secret_matches(token.strip(), stored):
        raise not_found()
    return public_id


@routes.get("/api/subscriptions/{id}")
async def get_subscription(request: web.Request) -> web.Response:
    public_id = await _authorised(request)
    sub = await request.app[STORE].get_subscription(public_id)
    if sub is None:
        raise not_found()
    return web.json_response(preferences_json(sub))


@routes.patch("/api/subscriptions/{id}")
async def update_subscription(request: web.Request) -> web.Response:
    """Change preferences; with `subscription`, also move to a renewed endpoint and keys."""
    public_id = await _authorised(request)
    settings = request.app[SETTINGS]
    body = require_object(
        await read_json(request, MAX_SUBSCRIPTION_BODY), "body", {"subscription", *PREFERENCE_JSON}
    )
    prefs = parse_preferences(body, settings)
    renewal = None
    if "subscription" in body:
        endpoint, p256dh, auth = parse_push_subscription(body["subscription"], settings)
        keyring = await request.app[CURRENT_KEYS]()
        renewal = NewSubscription(  # made with the key the page fetched: the active one
            endpoint=endpoint,
            p256dh=p256dh,
            auth=auth,
            vapid_key_id=keyring.active_id,
            token_hash=b"",
        )
    try:
        sub = await request.app[STORE].update_subscription(public_id, prefs, renewal)
    except EndpointTaken:
        raise ApiError(
            409, "conflict", "that endpoint belongs to another subscription", "subscription"
        ) from None
    if sub is None:
        raise not_found()
    return web.json_response(preferences_json(sub))


@routes.delete("/api/subscriptions/{id}")
async def delete_subscription(request: web.Request) -> web.Response:
    public_id = await _authorised(request)
    await request.app[STORE].delete_subscription(public_id)
    return web.Response(status=204)
