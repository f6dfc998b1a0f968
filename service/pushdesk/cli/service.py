"""`pushdesk serve` and `pushdesk worker`: the API and the fan-out processes."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import shutil
import signal
import tempfile

from ..config import Settings
from ..logs import setup_logging
from .common import (
    Commands,
    _port,
    _positive,
    _workers,
    run_loop,
    use_uvloop,
)


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    setup_logging(settings.log_level)
    host = args.host or settings.host
    port = args.port or settings.port
    workers = args.workers if args.workers is not None else settings.workers
    metrics_dir = None
    if workers:  # worker processes write their counters where /metrics reads them
        metrics_dir = tempfile.mkdtemp(prefix="pushdesk-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    try:
        return _run_server(settings, args, host, port, workers)
    finally:
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)


def _run_server(
    settings: Settings, args: argparse.Namespace, host: str, port: int, workers: int
) -> int:
    from aiohttp import web

    from ..app import Runtime, create_app, worker_options

    runtime = Runtime(
        worker=worker_options(settings),
        worker_processes=workers,
        config_file=args.config,
    )
    logging.getLogger("pushdesk").info(
        "pushdesk listening on http://%s:%s (%s)",
        host,
        port,
        f"{workers} worker processes" if workers else "worker in the API's event loop",
    )
    use_uvloop()
    web.run_app(
        create_app(settings, runtime), host=host, port=port, print=None, shutdown_timeout=10
    )
    return 0


def _worker(settings: Settings, args: argparse.Namespace) -> int:
    from ..app import run_workers, worker_options

    setup_logging(settings.log_level)
    options = worker_options(settings)
    if args.concurrency:
        options.concurrency = args.concurrency

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await run_workers(settings, stop, options)

    run_loop(run())
    return 0


def add_commands(commands: Commands) -> None:
    serve = commands.add_parser("serve", help="run the API and the fan-out workers")
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=_port, help="port to listen on (default 8080)")
    serve.add_argument(
        "--workers",
        type=_workers,
        help="worker processes beside the API (default: one per core); 0 = in the API's loop",
    )
    serve.set_defaults(run=_serve)
    worker = commands.add_parser("worker", help="run fan-out workers only")
    worker.add_argument(
        "--concurrency",
        type=_positive,
        help="lanes a batch may use at once (default: PUSHDESK_WORKER_CONCURRENCY, 1024)",
    )
    worker.set_defaults(run=_worker)
