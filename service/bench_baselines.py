"""The pywebpush baselines `pushdesk bench` compares against, on the same sink.

- `webpush()` in a loop, as the tutorials write it: a key file path and a fresh claims dict per
  call (pywebpush signs a new JWT and encrypts for every message; requests, one at a time).
- `webpush_async()` used well: one shared aiohttp session, the Vapid object loaded once, 100
  messages in flight.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
from py_vapid import Vapid02
from pywebpush import webpush, webpush_async

DATA = '{"title":"Bench alert","url":"https://news.example/bench"}'
IN_FLIGHT = 100


def webpush_loop_rate(
    subscriptions: list[dict[str, Any]], key_file: str, subject: str, seconds: float
) -> float:
    sent = 0
    started = time.perf_counter()
    for sub in subscriptions:
        webpush(sub, DATA, vapid_private_key=key_file, vapid_claims={"sub": subject}, ttl=60)
        sent += 1
        if time.perf_counter() - started > seconds:
            break
    return sent / (time.perf_counter() - started)


async def webpush_async_rate(
    subscriptions: list[dict[str, Any]], key_file: str, subject: str, seconds: float
) -> float:
    vapid = Vapid02.from_file(key_file)
    queue = iter(subscriptions)
    sent = 0
    started = time.perf_counter()
    deadline = started + seconds

    async def lane(session: aiohttp.ClientSession) -> None:
        nonlocal sent
        for sub in queue:
            if time.perf_counter() > deadline:
                return
            response = await webpush_async(
                sub,
                DATA,
                vapid_private_key=vapid,
                vapid_claims={"sub": subject},
                ttl=60,
                aiohttp_session=session,
            )
            if isinstance(response, aiohttp.ClientResponse):
                response.release()
            sent += 1

    async with aiohttp.ClientSession() as session:
        await asyncio.gather(*(lane(session) for _ in range(IN_FLIGHT)))
    return sent / (time.perf_counter() - started)
