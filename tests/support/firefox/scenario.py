"""Real Firefox end to end, run inside a private network namespace by tests/test_firefox.py.

pushdesk (API and worker), the Mozilla-protocol push server and a headless firefox-esr all run
on this namespace's loopback; nothing can leave the machine. The steps write what they saw to a
JSON file that the pytest side checks.

    unshare -n sh -c 'ip link set lo up && python -m tests.support.firefox.scenario RESULT.json'
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from pushdesk.api.state import KEYRING, STORE
from pushdesk.app import Runtime, create_app
from pushdesk.config import Settings
from pushdesk.fanout import WorkerOptions
from pushdesk.tokens import hash_secret, new_secret
from pushdesk.vapid_keys import create_key
from tests.support.firefox.browser import start_firefox
from tests.support.firefox.marionette import Marionette
from tests.support.firefox.push_server import MozillaPushServer

ARTICLE = "https://news.example/2026/11/25/vote-tonight"
NOTIFICATIONS = """
return navigator.serviceWorker.ready.then(r => r.getNotifications()).then(ns =>
  ns.map(n => ({title: n.title, body: n.body, tag: n.tag, data: n.data})));
"""


class Desk:
    """pushdesk running in this process, and an editor's HTTP client for it."""

    def __init__(self, home: Path):
        self.settings = Settings(
            database=f"sqlite:///{home / 'data' / 'pushdesk.db'}",
            keys_dir=home / "keys",
            vapid_subject="mailto:newsdesk@news.example",
            allow_http_endpoints=True,
            rate_limit=None,
        )
        runtime = Runtime(worker=WorkerOptions(poll_interval=0.05))
        self.app = create_app(self.settings, runtime)
        self.runner = web.AppRunner(self.app, access_log=None)
        self.base = ""
        self.key = new_secret()

    async def start(self) -> None:
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.base = f"http://127.0.0.1:{port}"
        await self.app[STORE].add_editor("desk", hash_secret(self.key))
        self.session = aiohttp.ClientSession()

    async def stop(self) -> None:
        await self.session.close()
        await self.runner.cleanup()

    @property
    def store(self):  # type: ignore[no-untyped-def]
        return self.app[STORE]

    async def subscriptions(self) -> list[dict[str, Any]]:
        return [
            {"id": s.public_id, "endpoint": s.endpoint, "topics": s.topics, "key": s.vapid_key_id}
            for s in await self.store.list_subscriptions()
        ]

    async def counts_once(
        self, alert_id: str, done: Callable[[dict[str, int]], object], seconds: float = 10.0
    ) -> dict[str, int]:
        """The alert's counts once `done(counts)` holds (or after `seconds`)."""
        headers = {"Authorization": f"Bearer {self.key}"}
        counts: dict[str, int] = {}
        for _ in range(int(seconds / 0.1)):
            async with self.session.get(f"{self.base}/api/alerts/{alert_id}", headers=headers) as r:
                counts = (await r.json())["counts"]
            if done(counts):
                break
            await asyncio.sleep(0.1)
        return counts

    async def alert(self, title: str, topics: list[str], url: str = ARTICLE) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {self.key}"}
        body = {
            "title": title,
            "url": url,
            "body": "Debate ends at 10pm",
            "topics": topics,
            "force": True,
        }
        async with self.session.post(f"{self.base}/api/alerts", json=body, headers=headers) as r:
            created = await r.json()
        for _ in range(300):
            async with self.session.get(
                f"{self.base}/api/alerts/{created['id']}", headers=headers
            ) as r:
                alert = await r.json()
            if alert["status"] in ("done", "failed", "cancelled"):
                return alert
            await asyncio.sleep(0.05)
        raise AssertionError(f"alert did not finish: {alert}")


async def run(out: Path) -> None:
    results: dict[str, Any] = {"steps": []}
    home = Path(tempfile.mkdtemp(prefix="pushdesk-firefox-"))
    push = await MozillaPushServer().start()
    desk = Desk(home)
    await desk.start()
    firefox, port = await start_firefox(home, push.websocket_url)
    m: Marionette | None = None
    try:
        m = await Marionette.connect(port)
        results["firefox"] = (await m.new_session()).get("browserVersion")
        for step in (
            subscribe_and_receive,
            change_preferences,
            rotate_key,
            unsubscribed_behind_our_back,
            unsubscribe_with_widget,
        ):
            started = time.monotonic()
            try:
                results[step.__name__] = await step(m, desk, push)
            except Exception:
                results[step.__name__] = {"error": traceback.format_exc()}
            results["steps"].append([step.__name__, round(time.monotonic() - started, 2)])
    finally:
        results["push_log"] = push.log[-60:]
        if m is not None:
            await m.quit()
        try:
            await asyncio.wait_for(firefox.wait(), 15)
        except TimeoutError:
            firefox.kill()
        await desk.stop()
        await push.stop()
        results["firefox_log"] = (home / "firefox.log").read_text(errors="replace")[-3000:]
        out.write_text(json.dumps(results, indent=2, default=str))


async def subscribe_with_button(m: Marionette, desk: Desk, topics: list[str]) -> None:
    await m.navigate(desk.base + "/")
    await m.wait_for("return document.querySelectorAll('#topics input').length >= 9")
    for topic in topics:
        await m.click(f"#topics input[value={topic}]")
    await m.click("#subscribe")  # a real click: Firefox grants the permission on a gesture
    await m.wait_for("return document.body.dataset.subscribed === 'yes'", 20)


async def subscribe_and_receive(m: Marionette, desk: Desk, push: MozillaPushServer) -> dict:
    await subscribe_with_button(m, desk, ["politics"])
    subs = await desk.subscriptions()
    alert = await desk.alert("Parliament votes on the budget tonight", ["politics"])
    shown = await m.wait_for(NOTIFICATIONS, 20)
    acks = list(await push.acked(1))
    clicked = await click_notification(m, desk)
    engagement = await desk.counts_once(alert["id"], lambda c: c["shown"] and c["clicked"])
    return {
        "engagement": engagement,
        "subscriptions": subs,
        "alert": alert,
        "shown": shown,
        "acks": acks,
        "clicked": clicked,
        "channels": list(push.channels),
    }


async def click_notification(m: Marionette, desk: Desk) -> dict:
    """Click the notification Firefox shows (its own alert window), then see what opened."""
    await m.context("chrome")
    try:
        clicked = await m.script(
            """
            const found = [];
            for (const win of Services.wm.getEnumerator("alert:alert")) {
              const box = win.document.getElementById("alertBox") ||
                          win.document.querySelector("#alertTitleLabel");
              found.push(win.document.documentElement.outerHTML.slice(0, 400));
              if (box) { box.click(); }
            }
            return found;
            """
        )
        await asyncio.sleep(1.0)
        tabs = await m.script(
            """
            const urls = [];
            for (const win of Services.wm.getEnumerator("navigator:browser")) {
              for (const tab of win.gBrowser.tabs) {
                urls.push(tab.linkedBrowser.currentURI.spec);
              }
            }
            return urls;
            """
        )
    finally:
        await m.context("content")
    return {"alert_windows": clicked, "tabs": tabs}


async def change_preferences(m: Marionette, desk: Desk, push: MozillaPushServer) -> dict:
    """Politics off in the widget: the next politics alert does not reach this reader."""
    await m.navigate(desk.base + "/")
    await m.wait_for("return document.body.dataset.subscribed === 'yes'", 20)
    await m.click("#topics input[value=politics]")  # uncheck
    await m.click("#save")
    await m.wait_for("return document.getElementById('message').textContent.includes('saved')")
    requests_before = len(push.answers)
    alert = await desk.alert("Minister resigns", ["politics"], url=ARTICLE + "-2")
    await asyncio.sleep(1.0)
    return {
        "subscriptions": await desk.subscriptions(),
        "alert": alert,
        "requests_to_push_service": len(push.answers) - requests_before,
    }


async def rotate_key(m: Marionette, desk: Desk, push: MozillaPushServer) -> dict:
    """`pushdesk keys rotate`: the widget moves Firefox to the new key; it keeps receiving."""
    before = await desk.subscriptions()
    new_id, new_key = await create_key(desk.store, desk.settings.keys_dir)
    await asyncio.sleep(1.2)  # the running service notices within a second
    await m.navigate(desk.base + "/")  # a page load: the widget checks the server's key
    after: list[dict[str, Any]] = []
    for _ in range(100):
        after = await desk.subscriptions()
        if after and after[0]["key"] == new_id:
            break
        await asyncio.sleep(0.1)
    acks_before = len(push.acks)
    alert = await desk.alert("Budget passes", ["breaking"], url=ARTICLE + "-3")
    acks = await push.acked(acks_before + 1)
    shown = await m.wait_for(
        NOTIFICATIONS.replace("ns.map(", "ns.filter(n => n.title === 'Budget passes').map("), 20
    )
    channel = after[0]["endpoint"].rsplit("/", 1)[1] if after else None
    return {
        "before": before,
        "after": after,
        "new_key_id": new_key and new_id,
        "new_key": new_key,
        "channel_key": push.channels[channel].key if channel else None,
        "old_channel_gone": push.channels[before[0]["endpoint"].rsplit("/", 1)[1]].gone,
        "alert": alert,
        "acks": acks[acks_before:],
        "shown": shown,
        "keyring_active": desk.app[KEYRING].active_id,
    }


async def unsubscribed_behind_our_back(m: Marionette, desk: Desk, push: MozillaPushServer) -> dict:
    """Firefox drops the subscription without telling pushdesk: the next alert gets 410."""
    [sub] = await desk.subscriptions()
    channel = sub["endpoint"].rsplit("/", 1)[1]
    await m.script(
        "return navigator.serviceWorker.ready"
        ".then(r => r.pushManager.getSubscription()).then(s => s && s.unsubscribe());"
    )
    for _ in range(100):
        if push.channels[channel].gone:
            break
        await asyncio.sleep(0.05)
    alert = await desk.alert("Late night vote", ["breaking"], url=ARTICLE + "-4")
    return {
        "channel_gone": push.channels[channel].gone,
        "alert": alert,
        "answers": [status for ch, status in push.answers if ch == channel],
        "subscriptions": await desk.subscriptions(),
    }


async def unsubscribe_with_widget(m: Marionette, desk: Desk, push: MozillaPushServer) -> dict:
    """Subscribe again, then "Turn off alerts": Firefox unregisters, pushdesk deletes."""
    await m.navigate(desk.base + "/")
    await m.wait_for("return document.body.dataset.subscribed === 'no'", 20)
    await m.click("#subscribe")
    await m.wait_for("return document.body.dataset.subscribed === 'yes'", 20)
    [sub] = await desk.subscriptions()
    channel = sub["endpoint"].rsplit("/", 1)[1]
    await m.click("#unsubscribe")
    await m.wait_for("return document.body.dataset.subscribed === 'no'", 20)
    for _ in range(100):
        if push.channels[channel].gone:
            break
        await asyncio.sleep(0.05)
    browser_sub = await m.script(
        "return navigator.serviceWorker.ready"
        ".then(r => r.pushManager.getSubscription()).then(s => s === null);"
    )
    return {
        "subscribed_again": sub,
        "channel_gone": push.channels[channel].gone,
        "subscriptions": await desk.subscriptions(),
        "browser_has_none": browser_sub,
    }


if __name__ == "__main__":
    asyncio.run(run(Path(sys.argv[1])))
