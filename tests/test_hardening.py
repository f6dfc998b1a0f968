"""Security hardening: rate limits, proxy headers, OpenAPI kept true, CSP, redirects, SSRF."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest

from pushdesk.api.openapi import build_spec
from pushdesk.webpush.classify import Result
from tests.support.helpers import BrowserKeys

STATIC = Path(__file__).parent.parent / "service" / "pushdesk" / "web" / "static"


def subscribe_body(n: int) -> dict:
    keys = BrowserKeys.generate()
    return {"subscription": keys.subscription_json(f"https://fcm.googleapis.com/fcm/send/r{n}")}


async def test_public_endpoints_are_rate_limited_per_client(make_client, settings):
    client = await make_client(settings, rate_limit=(5, 60.0))
    statuses = [
        (await client.post("/api/subscriptions", json=subscribe_body(n))).status for n in range(6)
    ]
    assert statuses == [201] * 5 + [429]
    resp = await client.post("/api/subscriptions", json=subscribe_body(9))
    error = await resp.json()
    assert resp.status == 429 and error["error"]["code"] == "rate_limited"
    assert 1 <= int(resp.headers["Retry-After"]) <= 12
    # Beacons and guessing tokens count too; reading the key and the catalogue does not.
    beacon = {"type": "shown", "alertId": "a", "subscriptionId": "s"}
    assert (await client.post("/api/events", json=beacon)).status == 429
    assert (
        await client.get("/api/subscriptions/x", headers={"Authorization": "Bearer y"})
    ).status == 429
    assert (await client.get("/api/topics")).status == 200
    # A client cannot dodge the limit with its own X-Forwarded-For: it is not a trusted proxy.
    spoofed = await client.post(
        "/api/subscriptions", json=subscribe_body(10), headers={"X-Forwarded-For": "203.0.113.9"}
    )
    assert spoofed.status == 429


async def test_forwarded_addresses_count_only_behind_a_trusted_proxy(make_client, settings):
    client = await make_client(settings, rate_limit=(2, 60.0), trusted_proxies=("127.0.0.1",))
    for offset, reader in ((0, "203.0.113.1"), (10, "203.0.113.2")):
        headers = {"X-Forwarded-For": f"198.51.100.7, {reader}"}
        bodies = [subscribe_body(offset + n) for n in range(3)]
        codes = [
            (await client.post("/api/subscriptions", json=body, headers=headers)).status
            for body in bodies
        ]
        assert codes == [201, 201, 429], reader


async def test_rate_limit_off(make_client, settings):
    client = await make_client(settings, rate_limit=None)
    codes = {
        (await client.post("/api/subscriptions", json=subscribe_body(n))).status for n in range(40)
    }
    assert codes == {201}


async def test_openapi_describes_exactly_the_routes_served(client):
    resp = await client.get("/api/openapi.json")
    assert resp.status == 200
    spec = await resp.json()
    assert spec == build_spec() and spec["openapi"].startswith("3.")
    described = {
        (method.upper(), path)
        for path, item in spec["paths"].items()
        for method in item
        if method in ("get", "post", "patch", "delete", "put")
    }
    served = set()
    for route in client.app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        path = info.get("path") or info.get("formatter") or ""
        if (
            path.startswith("/api/") or path in ("/healthz", "/readyz", "/metrics")
        ) and route.method not in ("HEAD", "OPTIONS"):
            served.add((route.method, path))
    assert served == described


@pytest.mark.parametrize("page", ["index.html", "console.html"])
def test_pages_carry_no_inline_script_or_style(page):
    html = (STATIC / page).read_text()
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html)
    assert "<style" not in html and not re.search(r"\son[a-z]+=", html)
    assert 'style="' not in html


async def test_redirects_are_not_followed(push_service, other_push_service, tmp_path):
    from pushdesk.webpush.payload import Message
    from pushdesk.webpush.sender import Sender, SenderOptions, Target, prepare
    from pushdesk.webpush.vapid import KeyRing, VapidSigner, generate_key_file, load_key_file

    key_id, _ = generate_key_file(tmp_path)
    keyring = KeyRing(
        {key_id: VapidSigner(key_id, load_key_file(tmp_path, key_id), "mailto:a@example.com")},
        key_id,
    )
    endpoint, keys = push_service.subscribe()
    elsewhere, _ = other_push_service.subscribe()
    push_service.script(endpoint, (307, {"Location": elsewhere}))
    message = prepare(Message(title="t", url="https://n.example/"), ttl=60)
    async with Sender(keyring, SenderOptions(allow_loopback=True)) as sender:
        outcome = await sender.send(Target(endpoint, keys.p256dh, keys.auth, key_id), message)
    assert outcome.result is Result.REJECTED and "redirect" in outcome.reason
    assert other_push_service.requests == []


async def test_tokens_and_editor_keys_never_reach_the_logs(desk, push_service, caplog):
    caplog.set_level(logging.DEBUG)
    endpoint, keys = push_service.subscribe()
    created = await (
        await desk.client.post(
            "/api/subscriptions", json={"subscription": keys.subscription_json(endpoint)}
        )
    ).json()
    await desk.client.get(
        f"/api/subscriptions/{created['id']}",
        headers={"Authorization": f"Bearer {created['token']}"},
    )
    await desk.client.get("/api/alerts", headers={"Authorization": "Bearer wrong-key"})
    await desk.send_and_wait({"title": "Logged?"})
    text = caplog.text + "".join(str(r.__dict__) for r in caplog.records)
    assert created["token"] not in text and desk.key not in text and "wrong-key" not in text
    assert len(caplog.records) > 0
