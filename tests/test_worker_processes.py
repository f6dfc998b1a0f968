"""Real worker processes sharing one alert to 20,000 readers; one is SIGKILLed mid-alert."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from collections import Counter
from pathlib import Path

from pushdesk.app import Runtime, create_app
from pushdesk.config import Settings
from pushdesk.fanout import planner
from tests.support.cli_runner import env_for
from tests.support.newsroom import Newsroom, counts_add_up

READERS = 20_000
BATCH = 500  # the worker's default batch: the most one crash may repeat


async def start_worker(settings: Settings, log: Path, *args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "pushdesk",
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


async def newsroom_without_workers(settings, aiohttp_client, push_service):
    client = await aiohttp_client(create_app(settings, Runtime(embedded_worker=False)))
    desk = await Newsroom.open(client)
    return desk, await desk.readers(push_service, READERS, ["breaking"])


def shards_by_owner(log: Path) -> Counter[str]:
    """Workers log one JSON object a line; count finished shards by worker."""
    entries = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    return Counter(e["message"].split()[1] for e in entries if "finished shard" in e["message"])


async def test_three_workers_share_one_alert_exactly_once(
    settings, aiohttp_client, push_service, tmp_path
):
    desk, endpoints = await newsroom_without_workers(settings, aiohttp_client, push_service)
    push_service.delay = 0.005
    log = tmp_path / "workers.log"
    workers = [await start_worker(settings, log, "--concurrency", "32") for _ in range(3)]
    try:
        created = await (await desk.push({"title": "Shared"})).json()
        alert = await desk.wait_final(created["id"], seconds=180)
    finally:
        for proc in workers:
            await stop(proc)
    assert alert["status"] == "done" and alert["counts"]["delivered"] == READERS
    assert all(len(push_service.messages(e)) == 1 for e in endpoints)
    assert all(proc.returncode == 0 for proc in workers), log.read_text()[-2000:]
    owners = shards_by_owner(log)
    assert sum(owners.values()) == -(-READERS // planner.SHARD_WIDTH)  # one owner a shard
    finished = [json.loads(x) for x in log.read_text().splitlines() if "finished shard" in x]
    assert all(entry["alert"] == created["id"] and entry["level"] == "INFO" for entry in finished)
    assert len(owners) >= 2, owners  # the work was shared


async def test_sigkilled_worker_is_replaced_and_the_alert_completes(
    settings, aiohttp_client, push_service, tmp_path, record_property
):
    desk, endpoints = await newsroom_without_workers(settings, aiohttp_client, push_service)
    push_service.delay = 0.005
    log = tmp_path / "workers.log"
    workers = [await start_worker(settings, log, "--concurrency", "32") for _ in range(3)]
    try:
        created = await (await desk.push({"title": "Crash test"})).json()
        for _ in range(6000):
            if sum(len(push_service.messages(e)) for e in endpoints[:5000]) >= 2000:
                break
            await asyncio.sleep(0.01)
        workers[0].kill()  # SIGKILL: no checkpoint, no goodbye
        await workers[0].wait()
        at_kill = await desk.alert(created["id"])
        assert at_kill["status"] == "sending", at_kill
        alert = await desk.wait_final(created["id"], seconds=180)
    finally:
        for proc in workers[1:]:
            await stop(proc)
    assert alert["status"] == "done" and counts_add_up(alert), alert
    assert alert["counts"]["delivered"] == READERS
    received = Counter(len(push_service.messages(e)) for e in endpoints)
    repeats = sum(n for copies, n in received.items() if copies > 1)
    record_property("repeated_after_sigkill", repeats)
    print(f"readers sent the alert twice after the SIGKILL: {repeats} (bound {BATCH})")
    assert received[0] == 0, "every reader got the alert"
    assert repeats <= BATCH and max(received) <= 2
