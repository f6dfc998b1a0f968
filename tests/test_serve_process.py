"""`pushdesk serve` as a real process: worker processes beside the API, and a graceful SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from collections import Counter

import aiohttp
import pytest

from pushdesk.config import Settings
from tests.support.cli_runner import env_for, free_port, pushdesk

STARTED: list[asyncio.subprocess.Process] = []


@pytest.fixture(autouse=True)
async def no_process_left_behind():
    """Whatever a test asserts, every `pushdesk serve` it started is stopped."""
    yield
    while STARTED:
        proc = STARTED.pop()
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()


async def start_serve(settings: Settings, port: int, *args: str) -> asyncio.subprocess.Process:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "pushdesk",
        "serve",
        "--port",
        str(port),
        *args,
        env=env_for(settings, PUSHDESK_LEASE_SECONDS="5"),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
        start_new_session=True,  # its worker processes go with it: killpg below
    )
    STARTED.append(proc)
    async with aiohttp.ClientSession() as session:
        for _ in range(200):
            try:
                async with session.get(f"http://127.0.0.1:{port}/api/topics") as resp:
                    if resp.status == 200:
                        return proc
            except aiohttp.ClientError:
                await asyncio.sleep(0.05)
    raise AssertionError("pushdesk serve did not start")


async def subscribe_many(session, base: str, push_service, count: int) -> list[str]:
    endpoints = []
    for _ in range(count):
        endpoint, keys = push_service.subscribe()
        body = {"subscription": keys.subscription_json(endpoint)}
        async with session.post(f"{base}/api/subscriptions", json=body) as resp:
            assert resp.status == 201
        endpoints.append(endpoint)
    return endpoints


async def wait_alert(session, base: str, alert_id: str, headers, seconds: float = 60) -> dict:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        async with session.get(f"{base}/api/alerts/{alert_id}", headers=headers) as resp:
            alert = await resp.json()
        if alert["status"] in ("done", "cancelled", "failed"):
            return alert
        await asyncio.sleep(0.05)
    raise AssertionError(f"alert not finished: {alert}")


async def test_serve_with_worker_processes_and_graceful_sigterm(settings, push_service):
    added = await pushdesk(settings, "editors", "add", "desk")
    key = added.out.strip().splitlines()[-1]
    headers = {"Authorization": f"Bearer {key}"}
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = await start_serve(settings, port, "--workers", "2")
    async with aiohttp.ClientSession() as session:
        endpoints = await subscribe_many(session, base, push_service, 400)
        async with session.post(
            f"{base}/api/alerts",
            json={"title": "Via workers", "url": "https://n.example/a"},
            headers=headers,
        ) as resp:
            assert resp.status == 202
            first = await resp.json()
        done = await wait_alert(session, base, first["id"], headers)
        assert done["status"] == "done" and done["counts"]["delivered"] == 400
        # The worker processes' counters reach the API's /metrics.
        async with session.get(f"{base}/metrics") as resp:
            metrics = await resp.text()
        delivered = next(
            float(line.rsplit(" ", 1)[1])
            for line in metrics.splitlines()
            if line.startswith("pushdesk_messages_total{") and 'result="delivered"' in line
        )
        assert delivered == 400
        assert "pushdesk_workers 2.0" in metrics

        # A slow push service, then SIGTERM in the middle of an alert.
        push_service.delay = 0.05
        async with session.post(
            f"{base}/api/alerts",
            json={"title": "Interrupted", "url": "https://n.example/b"},
            headers=headers,
        ) as resp:
            second = await resp.json()
        for _ in range(500):
            if sum(len(push_service.messages(e)) for e in endpoints) > 400 + 50:
                break
            await asyncio.sleep(0.01)
        stopping = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(proc.wait(), 15)
        assert code == 0 and time.monotonic() - stopping < 10

        push_service.delay = 0.0
        restarted = await start_serve(settings, port, "--workers", "1")
        try:
            final = await wait_alert(session, base, second["id"], headers)
        finally:
            restarted.send_signal(signal.SIGTERM)
            await asyncio.wait_for(restarted.wait(), 15)
    assert final["status"] == "done" and final["counts"]["delivered"] == 400
    copies = Counter(
        sum(1 for m in push_service.messages(e) if m["title"] == "Interrupted") for e in endpoints
    )
    assert copies[0] == 0
    assert sum(n for c, n in copies.items() if c > 1) <= 500  # at most the batch in flight


async def test_a_subject_the_signer_refuses_stops_start_up_with_one_line(settings):
    """Accepted by a loose check but refused by py_vapid, it used to crash every worker at
    warm-up, once a second, while /readyz answered 200."""
    run = await pushdesk(
        settings,
        "serve",
        "--workers",
        "1",
        PUSHDESK_VAPID_SUBJECT="https://news.example.com/contact",
    )
    assert run.code == 2 and "Traceback" not in run.err
    [line] = run.err.strip().splitlines()
    assert line.startswith("pushdesk: config: PUSHDESK_VAPID_SUBJECT") and "signer" in line


def children(pid: int) -> set[int]:
    found: set[int] = set()
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/children") as fh:
            found.update(int(p) for p in fh.read().split())
    return found


def environment_of(pid: int) -> dict[str, str]:
    with open(f"/proc/{pid}/environ", "rb") as fh:
        pairs = [item.split(b"=", 1) for item in fh.read().split(b"\0") if b"=" in item]
    return {k.decode(): v.decode() for k, v in pairs}


async def test_alerts_stored_while_workers_start_do_not_kill_them(settings, push_service):
    """SIGUSR1 (the wake-up) used to reach a worker before it installed its handler, and its
    default action ended the worker. Alerts posted from the API's first answer on: the same
    workers live on and send; at exit `serve` removes its metrics directory."""
    added = await pushdesk(settings, "editors", "add", "desk")
    headers = {"Authorization": f"Bearer {added.out.strip().splitlines()[-1]}"}
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = await start_serve(settings, port, "--workers", "2")
    workers = children(proc.pid)
    metrics_dir = environment_of(min(workers))["PROMETHEUS_MULTIPROC_DIR"]
    async with aiohttp.ClientSession() as session:
        ids = []
        for n in range(20):  # the first ones land while the workers import and warm up
            body = {"title": f"Early {n}", "url": f"https://n.example/early/{n}", "force": True}
            async with session.post(f"{base}/api/alerts", json=body, headers=headers) as resp:
                assert resp.status == 202, await resp.text()
                ids.append((await resp.json())["id"])
            await asyncio.sleep(0.05)
        endpoints = await subscribe_many(session, base, push_service, 5)
        body = {"title": "After", "url": "https://n.example/after"}
        async with session.post(f"{base}/api/alerts", json=body, headers=headers) as resp:
            last = await resp.json()
        done = await wait_alert(session, base, last["id"], headers)
        assert done["counts"]["delivered"] == 5 and len(push_service.messages(endpoints[0])) == 1
        for alert_id in ids:
            assert (await wait_alert(session, base, alert_id, headers))["status"] == "done"
    assert children(proc.pid) == workers  # none died and was replaced
    assert os.path.isdir(metrics_dir)
    proc.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(proc.wait(), 15) == 0
    assert not os.path.exists(metrics_dir)


async def test_readyz_says_not_ready_while_workers_fail_to_start(settings):
    """A worker that cannot start (here its VAPID key file became readable by others, which
    it refuses) is restarted with a growing pause, and /readyz answers 503 meanwhile."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = await start_serve(settings, port, "--workers", "1")
    async with aiohttp.ClientSession() as session:
        for _ in range(100):
            async with session.get(f"{base}/readyz") as resp:
                if resp.status == 200:
                    break
            await asyncio.sleep(0.1)
        assert resp.status == 200
        for key_file in settings.keys_dir.glob("*.pem"):
            key_file.chmod(0o644)
        [worker] = children(proc.pid)
        os.kill(worker, signal.SIGKILL)
        for _ in range(100):
            async with session.get(f"{base}/readyz") as resp:
                body = await resp.json()
            if resp.status == 503:
                break
            await asyncio.sleep(0.1)
        assert resp.status == 503 and body["checks"]["workers"] is False
        assert body["checks"]["database"] is True
