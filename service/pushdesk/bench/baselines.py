"""The pywebpush baselines `pushdesk bench` compares against, on the same sink.

- `webpush()` in a loop, as the tutorials write it: a key file path and a fresh claims dict per
  call (pywebpush signs a new JWT and encrypts for every message; requests, one at a time).
- `webpush_async()` used well: one shared aiohttp session, the Vapid object loaded once, 100
  messages in flight.
- aiohttp's ClientSession posting bodies encrypted by pushdesk's own `encrypt`, with nothing
  else (no store, policy or signing): what the plain library use would reach at best.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from typing import Any

import aiohttp
from py_vapid import Vapid02
from pywebpush import webpush, webpush_async

DATA = '{"title":"Bench alert","url":"https://news.example/bench"}'
IN_FLIGHT = 100


def trusting_connector(**options: Any) -> aiohttp.TCPConnector:
    """aiohttp's connector with a TLS context made now, so it trusts what `SSL_CERT_FILE`
    names at this moment (aiohttp's own default context is made when it is imported)."""
    return aiohttp.TCPConnector(ssl=ssl.create_default_context(), **options)


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

    async with aiohttp.ClientSession(connector=trusting_connector()) as session:
        await asyncio.gather(*(lane(session) for _ in range(IN_FLIGHT)))
    return sent / (time.perf_counter() - started)


def session_rate(
    endpoints: list[tuple[str, bytes, bytes]], seconds: float, processes: int
) -> float:
    """aiohttp posting cryptography-encrypted bodies, one ClientSession per process, 128 in
    flight, no store, no policy, no VAPID signing. Runs `processes` copies at once (like
    pushdesk's workers) and returns their summed rate."""
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(processes) as pool:
        rates = pool.starmap(_session_one, [(endpoints, seconds)] * processes)
    return sum(rates)


def _session_one(endpoints: list[tuple[str, bytes, bytes]], seconds: float) -> float:
    from ..webpush.crypto import encrypt

    plain = DATA.encode()
    headers = {
        "TTL": "60",
        "Urgency": "high",
        "Content-Encoding": "aes128gcm",
        "Content-Type": "application/octet-stream",
        "Authorization": "vapid t=x,k=y",
    }

    async def run() -> float:
        sent = 0
        queue = iter(endpoints * 50)
        started = time.perf_counter()
        deadline = started + seconds
        connector = trusting_connector(limit=0, limit_per_host=128)
        async with aiohttp.ClientSession(connector=connector, auto_decompress=False) as session:

            async def lane() -> None:
                nonlocal sent
                for url, p256dh, auth in queue:
                    if time.perf_counter() > deadline:
                        return
                    body = encrypt(plain, p256dh, auth)
                    async with session.post(url, data=body, headers=headers) as resp:
                        await resp.read()
                    sent += 1

            await asyncio.gather(*(lane() for _ in range(IN_FLIGHT)))
        return sent / (time.perf_counter() - started)

    return asyncio.run(run())
