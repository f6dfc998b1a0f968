"""The browser side in headless Chromium: demo page, widget and service worker.

Chromium cannot subscribe without Google's push service, so the page's `pushManager` is stubbed
with a subscription whose keys this test generated; pushes are handed to the real service worker
through the DevTools protocol (`ServiceWorker.deliverPushMessage`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json

import pytest

from pushdesk.api.state import STORE
from pushdesk.app import create_app
from tests.support.browser import open_page, wait_until
from tests.support.helpers import BrowserKeys

pytestmark = pytest.mark.browser


@pytest.fixture
def database(tmp_path):
    """Browser tests exercise the pages and the worker script; one store is enough."""
    return f"sqlite:///{tmp_path / 'data' / 'pushdesk.db'}"


@pytest.fixture
async def server(settings, aiohttp_server):
    return await aiohttp_server(create_app(settings))


def stub_push_manager(endpoint: str, keys: BrowserKeys) -> str:
    """An init script replacing PushManager with one that hands out our test subscription.

    Each later subscribe() gets a new endpoint (as a browser does) and records the
    applicationServerKey it was given, base64url, in window.__subscribedWith.
    """
    sub = keys.subscription_json(endpoint)
    return """
    (() => {
      const json = __SUBSCRIPTION__;
      const b64 = (buf) => btoa(String.fromCharCode(...new Uint8Array(buf)))
        .replace(/\\+/g, "-").replace(/\\//g, "_").replace(/=+$/, "");
      const store = (k, v) => localStorage.setItem("__stub_" + k, JSON.stringify(v));
      const load = (k) => JSON.parse(localStorage.getItem("__stub_" + k) || "null");
      const make = (options, n) => {
        const endpoint = n > 1 ? json.endpoint + "-" + n : json.endpoint;
        return {
          endpoint, expirationTime: null, options,
          toJSON: () => ({...json, endpoint}),
          unsubscribe: async () => { store("current", null); return true; },
        };
      };
      PushManager.prototype.subscribe = async function (options) {
        const n = (load("count") || 0) + 1;
        const key = b64(options.applicationServerKey);
        store("count", n);
        store("current", {key, n});
        store("keys", [...(load("keys") || []), key]);
        return make({applicationServerKey: options.applicationServerKey}, n);
      };
      PushManager.prototype.getSubscription = async function () {
        const current = load("current");
        if (!current) return null;
        const raw = Uint8Array.from(atob(current.key.replace(/-/g, "+").replace(/_/g, "/")),
                                    (c) => c.charCodeAt(0));
        return make({applicationServerKey: raw.buffer}, current.n);
      };
    })();
    """.replace("__SUBSCRIPTION__", json.dumps(sub))


async def test_demo_page_loads_cleanly_and_registers_the_worker(browser, server):
    base = str(server.make_url("/")).rstrip("/")
    page, errors = await open_page(browser, base)
    response = await page.goto(base + "/")
    assert response is not None and response.ok
    assert "script-src 'self'" in response.headers["content-security-policy"]
    scope = await page.evaluate("navigator.serviceWorker.ready.then(r => r.scope)")
    assert scope == base + "/"
    script = await page.evaluate("navigator.serviceWorker.ready.then(r => r.active.scriptURL)")
    assert script == base + "/sw.js"
    await wait_until(page, "document.querySelectorAll('#topics input').length >= 9")
    assert await page.text_content("#status") == "Alerts are off."
    assert errors == []


async def test_push_shows_the_notification_and_click_opens_the_story(browser, server):
    base = str(server.make_url("/")).rstrip("/")
    page, errors = await open_page(browser, base)
    await page.goto(base + "/")
    await page.evaluate("navigator.serviceWorker.ready")
    cdp = await page.context.new_cdp_session(page)
    registration_id = await active_registration(cdp)
    payload = {
        "title": "Election called",
        "body": "Polls open at 7am",
        "url": "https://news.example/2026/election",
        "tag": "alert-abc",
        "alertId": "abc",
        "timestamp": 1_790_000_000_000,
    }
    notes = await deliver(page, cdp, base, registration_id, payload)
    assert notes == [
        {
            "title": "Election called",
            "body": "Polls open at 7am",
            "tag": "alert-abc",
            "data": {"url": "https://news.example/2026/election", "alertId": "abc"},
        }
    ]

    # A second push of the same alert (a correction) replaces the notification: same tag.
    corrected = {**payload, "body": "Polls open at 8am"}
    corrected_shown = SHOWN.replace("ns.length ?", "ns.some(n => n.body.includes('8am')) ?")
    await deliver(page, cdp, base, registration_id, corrected, until=corrected_shown)
    notes = await wait_until(page, SHOWN)
    assert [n["body"] for n in notes] == ["Polls open at 8am"]

    # The click handler: closes the notification and opens the story. Headless Chromium has no
    # way to click a notification, so the worker gets a NotificationEvent and openWindow is
    # recorded instead of performed (it needs a real user activation).
    worker = page.context.service_workers[0]
    opened = await worker.evaluate(
        """async () => {
          const [n] = await self.registration.getNotifications();
          let opened = null;
          Clients.prototype.openWindow = async (url) => { opened = url; return null; };
          try { self.dispatchEvent(new NotificationEvent('notificationclick', {notification: n})); }
          catch (e) {}
          for (let i = 0; i < 50 && opened === null; i++) await new Promise(r => setTimeout(r, 20));
          const left = (await self.registration.getNotifications()).length;
          return {opened, left};
        }"""
    )
    assert opened == {"opened": "https://news.example/2026/election", "left": 0}
    assert errors == []


SHOWN = """navigator.serviceWorker.ready.then(r => r.getNotifications()).then(ns =>
  ns.length ? ns.map(n => ({title: n.title, body: n.body, tag: n.tag, data: n.data})) : null)"""


async def deliver(
    page, cdp, base: str, registration_id: str, payload: dict, until: str = SHOWN
) -> list:
    """Hand a push to the worker through DevTools and return the notifications it shows.

    Under heavy load DevTools' testing hook has been seen to drop a message, so it is handed
    over again (at most three times); the alert's tag keeps that to one notification."""
    for _ in range(3):
        await cdp.send(
            "ServiceWorker.deliverPushMessage",
            {"origin": base + "/", "registrationId": registration_id, "data": json.dumps(payload)},
        )
        with contextlib.suppress(AssertionError):
            return await wait_until(page, until, seconds=5)
    raise AssertionError("the service worker showed no notification")


async def active_registration(cdp) -> str:
    """The worker's registration id once DevTools reports its version activated and running:
    a push handed over before that is dropped."""
    ready: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    def on_version(event) -> None:
        for version in event["versions"]:
            activated = version["status"] == "activated" and version["runningStatus"] == "running"
            if activated and not ready.done():
                ready.set_result(version["registrationId"])

    cdp.on("ServiceWorker.workerVersionUpdated", on_version)
    await cdp.send("ServiceWorker.enable")
    return await asyncio.wait_for(ready, 15)


async def test_widget_subscribe_update_unsubscribe_reach_the_api(browser, server):
    base = str(server.make_url("/")).rstrip("/")
    store = server.app[STORE]
    keys = BrowserKeys.generate()
    endpoint = base + "/fake-push/reader-1"
    page, errors = await open_page(browser, base)
    await page.add_init_script(stub_push_manager(endpoint, keys))
    await page.goto(base + "/")
    await wait_until(page, "document.querySelectorAll('#topics input').length >= 9")
    await page.check("#topics input[value=sport]")
    await page.check("#quiet-on")
    await page.fill("#cap", "4")
    await page.click("#subscribe")  # a real click: the permission request has its user gesture
    await wait_until(page, "document.body.dataset.subscribed === 'yes'")

    assert await store.count_subscriptions() == 1
    sub = await _only_subscription(store)
    assert sub is not None
    assert sub.endpoint == endpoint and sub.p256dh == keys.p256dh and sub.auth == keys.auth
    assert sorted(sub.topics) == ["breaking", "sport"]
    assert sub.max_per_day == 4 and sub.quiet_hours is not None
    assert sub.timezone  # the browser's own zone was sent
    assert await page.text_content("#status") == "Alerts are on."

    await page.uncheck("#topics input[value=breaking]")
    await page.click("#save")
    await wait_until(page, "document.getElementById('message').textContent.includes('saved')")
    updated = await _only_subscription(store)
    assert updated is not None and updated.topics == ["sport"]

    # A reload finds the stored id/token and shows the reader's own choices.
    await page.reload()
    await wait_until(page, "document.body.dataset.subscribed === 'yes'")
    assert await page.is_checked("#topics input[value=sport]")
    assert not await page.is_checked("#topics input[value=breaking]")

    await page.click("#unsubscribe")
    await wait_until(page, "document.body.dataset.subscribed === 'no'")
    assert await store.count_subscriptions() == 0
    assert errors == []


async def test_widget_degrades_when_permission_is_denied(browser, server):
    base = str(server.make_url("/")).rstrip("/")
    context = await browser.new_context()
    page = await context.new_page()
    await page.add_init_script("Notification.requestPermission = async () => 'denied';")
    await page.goto(base + "/")
    await wait_until(page, "document.querySelectorAll('#topics input').length >= 9")
    await page.click("#subscribe")
    await wait_until(page, "document.getElementById('message').textContent.length > 0")
    assert "not granted" in await page.text_content("#message")
    assert await server.app[STORE].count_subscriptions() == 0


async def _only_subscription(store):
    subs = await store.list_subscriptions()
    assert len(subs) <= 1
    return subs[0] if subs else None


async def test_widget_moves_the_reader_to_a_rotated_key(browser, server, settings):
    from pushdesk.api.state import KEYRING
    from pushdesk.vapid_keys import create_key

    base = str(server.make_url("/")).rstrip("/")
    store = server.app[STORE]
    endpoint = base + "/fake-push/rotating"
    page, errors = await open_page(browser, base)
    await page.add_init_script(stub_push_manager(endpoint, BrowserKeys.generate()))
    await page.goto(base + "/")
    await wait_until(page, "document.querySelectorAll('#topics input').length >= 9")
    await page.check("#topics input[value=world]")
    await page.click("#subscribe")
    await wait_until(page, "document.body.dataset.subscribed === 'yes'")
    before = await _only_subscription(store)
    assert before is not None and before.vapid_key_id == server.app[KEYRING].active_id

    new_id, new_key = await create_key(store, settings.keys_dir)  # pushdesk keys rotate
    await asyncio.sleep(1.1)  # the service notices within a second
    await page.reload()
    await wait_until(page, "document.body.dataset.subscribed === 'yes'")
    await wait_until(page, "JSON.parse(localStorage.getItem('__stub_count')) === 2")
    after = await _only_subscription(store)
    assert after is not None and after.vapid_key_id == new_id
    assert after.endpoint == endpoint + "-2" and after.public_id == before.public_id
    assert sorted(after.topics) == ["breaking", "world"]  # preferences carried over
    used = await page.evaluate("JSON.parse(localStorage.getItem('__stub_keys'))")
    assert used[-1] == new_key and used[0] != new_key
    # A further load finds nothing to change.
    await page.reload()
    await wait_until(page, "document.body.dataset.subscribed === 'yes'")
    assert await page.evaluate("JSON.parse(localStorage.getItem('__stub_count'))") == 2
    assert errors == []


async def test_pushsubscriptionchange_sends_the_renewed_subscription(browser, server):
    """Firefox renews subscriptions and fires pushsubscriptionchange: sw.js sends the new one
    with the stored token, and the reader keeps their preferences."""
    base = str(server.make_url("/")).rstrip("/")
    store = server.app[STORE]
    page, errors = await open_page(browser, base)
    await page.add_init_script(stub_push_manager(base + "/fake-push/old", BrowserKeys.generate()))
    await page.goto(base + "/")
    await wait_until(page, "document.querySelectorAll('#topics input').length >= 9")
    await page.check("#topics input[value=culture]")
    await page.click("#subscribe")
    await wait_until(page, "document.body.dataset.subscribed === 'yes'")
    before = await _only_subscription(store)
    assert before is not None

    renewed = BrowserKeys.generate().subscription_json(base + "/fake-push/renewed")
    worker = page.context.service_workers[0]
    await worker.evaluate(
        """(renewed) => {
          const subscription = {endpoint: renewed.endpoint, toJSON: () => renewed};
          const event = new ExtendableEvent("pushsubscriptionchange");
          Object.defineProperty(event, "newSubscription", {value: subscription});
          try { self.dispatchEvent(event); } catch (e) {}  // untrusted: waitUntil may throw
        }""",
        renewed,
    )
    for _ in range(100):
        after = await _only_subscription(store)
        if after is not None and after.endpoint == renewed["endpoint"]:
            break
        await asyncio.sleep(0.05)
    assert after is not None and after.public_id == before.public_id
    assert after.endpoint == renewed["endpoint"]
    assert sorted(after.topics) == ["breaking", "culture"]
    assert errors == []
