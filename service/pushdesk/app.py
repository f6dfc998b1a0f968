"""The aiohttp application factory: wires settings, store, keys, API, web files and workers."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from aiohttp import web

from .api import setup_api
from .api.errors import error_middleware
from .api.http import cors_middleware, security_headers
from .api.ratelimit import rate_limit_middleware
from .api.state import (
    CURRENT_KEYS,
    KEYRING,
    SETTINGS,
    STORAGE_TROUBLE,
    STORE,
    WAKE_WORKERS,
    WORKER_COUNT,
    WORKERS_READY,
    StorageTrouble,
)
from .config import Settings
from .fanout import FanoutWorker, WorkerOptions
from .fanout.supervisor import WorkerProcesses
from .store import Store, open_store
from .vapid_keys import KeyRingRefresher, load_keyring
from .web import setup_web
from .webpush.sender import Sender, SenderOptions

MAX_BODY = 64 * 1024


@dataclass
class Runtime:
    """How this process takes part in the fan-out (tests tune these)."""

    embedded_worker: bool = True
    worker_processes: int = 0  # > 0: child processes do the fan-out instead
    config_file: str | None = None
    worker: WorkerOptions = field(default_factory=WorkerOptions)
    sender: SenderOptions | None = None


RUNTIME = web.AppKey("runtime", Runtime)
WORKER = web.AppKey("worker", FanoutWorker)


def create_app(settings: Settings, runtime: Runtime | None = None) -> web.Application:
    app = web.Application(
        middlewares=[cors_middleware, error_middleware, rate_limit_middleware(settings)],
        client_max_size=MAX_BODY,
    )
    app[SETTINGS] = settings
    app[RUNTIME] = runtime or Runtime(worker=worker_options(settings))
    app[WAKE_WORKERS] = lambda: None
    app[WORKER_COUNT] = lambda: 0
    app[WORKERS_READY] = lambda: True
    app[STORAGE_TROUBLE] = StorageTrouble()
    app.on_response_prepare.append(security_headers)
    app.cleanup_ctx.append(_store_and_keys)
    app.cleanup_ctx.append(_embedded_worker)
    app.cleanup_ctx.append(_worker_processes)
    setup_api(app)
    setup_web(app)
    return app


async def _store_and_keys(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    store = await open_store(settings.database)
    try:
        app[STORE] = store
        keyring = await load_keyring(
            store, settings.keys_dir, settings.vapid_subject, create_first=True
        )
        app[KEYRING] = keyring
        refresher = KeyRingRefresher(keyring, store, settings.keys_dir, settings.vapid_subject)
        app[CURRENT_KEYS] = refresher.__call__
        yield
    finally:
        await store.close()


def worker_options(settings: Settings) -> WorkerOptions:
    return WorkerOptions(
        concurrency=settings.worker_concurrency, lease=float(settings.lease_seconds)
    )


def sender_options(settings: Settings, runtime: Runtime | None = None) -> SenderOptions:
    """How this deployment sends (a test's runtime may bring its own)."""
    if runtime is not None and runtime.sender is not None:
        return runtime.sender
    return SenderOptions(
        allow_loopback=settings.allow_http_endpoints, per_origin=settings.origin_connections
    )


async def _embedded_worker(app: web.Application) -> AsyncIterator[None]:
    """The embedded default: one fan-out worker in the API's own event loop."""
    runtime = app[RUNTIME]
    if not runtime.embedded_worker or runtime.worker_processes:
        yield
        return
    sender = Sender(app[KEYRING], sender_options(app[SETTINGS], runtime))
    worker = FanoutWorker(app[STORE], sender, runtime.worker, refresh_keys=app[CURRENT_KEYS])
    app[WORKER] = worker
    app[WAKE_WORKERS] = worker.wake
    app[WORKER_COUNT] = lambda: 1
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        yield
    finally:
        stop.set()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.shield(task), 10)
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await sender.close()


async def _worker_processes(app: web.Application) -> AsyncIterator[None]:
    """`serve --workers N`: N worker processes beside the API, woken when an alert arrives."""
    runtime = app[RUNTIME]
    if not runtime.worker_processes:
        yield
        return
    processes = WorkerProcesses(runtime.worker_processes, runtime.config_file)
    await processes.start()
    app[WAKE_WORKERS] = processes.wake
    app[WORKER_COUNT] = processes.alive
    app[WORKERS_READY] = processes.ready
    try:
        yield
    finally:
        await processes.stop()


async def run_workers(settings: Settings, stop: asyncio.Event, options: WorkerOptions) -> None:
    """`pushdesk worker`: fan-out workers alone, on any machine that reaches the database.

    SIGUSR1 wakes the worker at once (the API sends it to the workers it started).
    """
    store: Store = await open_store(settings.database)
    try:
        keyring = await load_keyring(store, settings.keys_dir, settings.vapid_subject)
        async with Sender(keyring, sender_options(settings)) as sender:
            refresh = KeyRingRefresher(keyring, store, settings.keys_dir, settings.vapid_subject)
            worker = FanoutWorker(store, sender, options, refresh_keys=refresh)
            asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, worker.wake)
            await worker.run(stop)
    finally:
        await store.close()
