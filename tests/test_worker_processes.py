"""Real worker processes sharing one alert; one is SIGKILLed mid-alert."""

from __future__ import annotations

import asyncio
import signal
import sys
from collections import Counter
from pathlib import Path

from service.app import Runtime, create_app
from service.config import Settings
from tests.cli_runner import env_for
from tests.newsroom import Newsroom, counts_add_up

BATCH = 500  # the worker's default batch: the most a crash may repeat


async def start_worker(settings: Settings, log: Path, *args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "service",
        "worker",
        *args,
        env=env_for(settings, PUSHDESK_LEASE_SECONDS="2"),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=log.open("ab"),
    )


async def stop(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), 15)


async def test_sigkilled_worker_is_replaced_and_the_alert_completes(
    settings, aiohttp_client, push_service, tmp_path
):
    client = await aiohttp_client(create_app(settings, Runtime(embedded_worker=False)))
    desk = await Newsroom.open(client)
    endpoints = await desk.readers(push_service, 3000, ["breaking"])
    push_service.delay = 0.01
    log = tmp_path / "workers.log"
    first = await start_worker(settings, log, "--concurrency", "16")
    created = await (await desk.push({"title": "Crash test"})).json()
    for _ in range(3000):
        if sum(len(push_service.messages(e)) for e in endpoints) >= 800:
            break
        await asyncio.sleep(0.01)
    first.kill()  # SIGKILL: no checkpoint, no goodbye
    await first.wait()
    at_kill = await desk.alert(created["id"])
    assert at_kill["status"] == "sending", at_kill

    second = await start_worker(settings, log, "--concurrency", "64")
    try:
        alert = await desk.wait_final(created["id"], seconds=120)
    finally:
        await stop(second)
    assert alert["status"] == "done" and counts_add_up(alert), alert
    assert alert["counts"]["delivered"] == 3000
    received = Counter(len(push_service.messages(e)) for e in endpoints)
    assert received[0] == 0, "every reader got the alert"
    assert sum(n for copies, n in received.items() if copies > 1) <= BATCH
    assert max(received) <= 2


async def test_three_workers_share_one_alert_exactly_once(
    settings, aiohttp_client, push_service, tmp_path
):
    client = await aiohttp_client(create_app(settings, Runtime(embedded_worker=False)))
    desk = await Newsroom.open(client)
    endpoints = await desk.readers(push_service, 6000, ["breaking"])
    push_service.delay = 0.02
    log = tmp_path / "workers.log"
    workers = [await start_worker(settings, log, "--concurrency", "32") for _ in range(3)]
    try:
        created = await (await desk.push({"title": "Shared"})).json()
        alert = await desk.wait_final(created["id"], seconds=120)
    finally:
        for proc in workers:
            await stop(proc)
    assert alert["status"] == "done" and alert["counts"]["delivered"] == 6000
    assert all(len(push_service.messages(e)) == 1 for e in endpoints)
    assert all(proc.returncode == 0 for proc in workers), log.read_text()[-2000:]
    shards_by_owner = Counter(
        line.split("worker ", 1)[1].split()[0]
        for line in log.read_text().splitlines()
        if "finished shard" in line
    )
    assert sum(shards_by_owner.values()) == 6  # 6000 readers, shards of 1000 ids
    assert len(shards_by_owner) >= 2, shards_by_owner  # the work was shared
