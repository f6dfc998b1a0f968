"""Test helpers playing the newsroom: an editor with a key, readers, and alerts."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from aiohttp.test_utils import TestClient

from pushdesk.api.state import KEYRING, STORE
from pushdesk.store import NewSubscription, QuietHours
from pushdesk.store.models import Preferences
from pushdesk.tokens import hash_secret, new_secret
from tests.support.fake_push import FakePushService


@dataclass
class Newsroom:
    client: TestClient
    key: str

    @classmethod
    async def open(cls, client: TestClient, editor: str = "desk") -> Newsroom:
        key = new_secret()
        assert await client.app[STORE].add_editor(editor, hash_secret(key))
        return cls(client, key)

    @property
    def store(self):
        return self.client.app[STORE]

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    async def readers(
        self, push: FakePushService, count: int, topics: list[str], **prefs: Any
    ) -> list[str]:
        """`count` readers subscribed at the fake push service; returns their endpoints."""
        items, endpoints = [], []
        key_id = self.client.app[KEYRING].active_id
        for _ in range(count):
            endpoint, keys = push.subscribe()
            endpoints.append(endpoint)
            items.append(
                NewSubscription(
                    endpoint=endpoint,
                    p256dh=keys.p256dh,
                    auth=keys.auth,
                    vapid_key_id=key_id,
                    token_hash=hash_secret(new_secret()),
                    preferences=Preferences(topics=tuple(topics), **prefs),
                )
            )
        created, _ = await self.store.import_subscriptions(items)
        assert created == count
        return endpoints

    async def push(self, body: dict[str, Any], headers: dict[str, str] | None = None):
        payload = {"url": "https://news.example/story", **body}
        payload.setdefault("title", "Breaking news")
        return await self.client.post(
            "/api/alerts", json=payload, headers={**self.auth, **(headers or {})}
        )

    async def send_and_wait(self, body: dict[str, Any]) -> dict[str, Any]:
        resp = await self.push(body)
        assert resp.status == 202, await resp.text()
        return await self.wait_final((await resp.json())["id"])

    async def wait_started(self, alert_id: str, seconds: float = 30) -> None:
        for _ in range(int(seconds / 0.02)):
            if (await self.alert(alert_id))["counts"]["sent"] > 0:
                return
            await asyncio.sleep(0.02)
        raise AssertionError(f"alert {alert_id} sent nothing in {seconds} s")

    async def alert(self, alert_id: str) -> dict[str, Any]:
        resp = await self.client.get(f"/api/alerts/{alert_id}", headers=self.auth)
        assert resp.status == 200
        return await resp.json()

    async def wait_final(self, alert_id: str, seconds: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + seconds
        while True:
            alert = await self.alert(alert_id)
            if alert["status"] in ("done", "cancelled", "failed"):
                return alert
            assert time.monotonic() < deadline, f"alert still {alert['status']}: {alert}"
            await asyncio.sleep(0.05)


def quiet_now(timezone: str = "UTC") -> QuietHours:
    """Quiet hours that contain the present moment in `timezone` and end in about an hour."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    local = datetime.now(ZoneInfo(timezone))
    minute = local.hour * 60 + local.minute
    return QuietHours((minute - 60) % 1440, (minute + 61) % 1440)


def counts_add_up(alert: dict[str, Any]) -> bool:
    c = alert["counts"]
    return c["audience"] == sum(
        c[k] for k in ("delivered", "removed", "failed", "skipped", "deferred")
    )
