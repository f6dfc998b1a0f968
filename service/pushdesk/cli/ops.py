"""`pushdesk backup`, `stats` and `bench`: the operator's tools."""

from __future__ import annotations

import argparse
import asyncio
import os
from pathlib import Path
from typing import Any

from ..config import Settings
from ..errors import CliError
from ..store import (
    Store,
)
from .common import (
    Commands,
    _count,
    _date,
    _latency,
    _seconds,
    _workers,
    with_store,
)


def _backup(settings: Settings, args: argparse.Namespace) -> int:
    from ..backup import backup_sqlite

    if not settings.database.startswith("sqlite:///"):
        raise CliError(
            "on PostgreSQL use pg_dump (pg_dump --format=custom DATABASE_URL > pushdesk.dump) "
            f"and copy {settings.keys_dir} with it"
        )
    source = Path(settings.database.removeprefix("sqlite:///"))
    if not source.is_file():
        raise CliError(f"no database at {source}")
    keys = backup_sqlite(source, settings.keys_dir, args.path)
    print(f"database copied to {args.path}; {keys} key files to {args.path}.keys/")
    return 0


def _stats(settings: Settings, args: argparse.Namespace) -> int:
    async def action(store: Store) -> tuple[int, dict[str, int], list[Any]]:
        return (
            await store.count_subscriptions(),
            await store.topic_counts(),
            await store.list_alerts(10),
        )

    total, topics, alerts = with_store(settings, action)
    print(f"readers: {total}")
    for topic, count in sorted(topics.items(), key=lambda t: -t[1]):
        print(f"  {topic:<16} {count}")
    print("recent alerts:")
    for alert in alerts:
        c = alert.counts
        print(
            f"  {_date(alert.created_at)}  {alert.status:<9} {alert.title[:50]:<50} "
            f"delivered {c['delivered']}/{c['audience']}  removed {c['removed']}  "
            f"failed {c['failed']}"
        )
    return 0


def _bench(settings: Settings, args: argparse.Namespace) -> int:
    import importlib.util

    missing = [m for m in ("pywebpush", "http_ece") if importlib.util.find_spec(m) is None]
    if missing:  # the baselines' libraries are not in a production install
        raise CliError(f"the bench needs {', '.join(missing)}: pip install 'pushdesk[bench]'")
    from .. import bench

    distance = bench.Distance(args.latency, args.tls)
    return asyncio.run(
        bench.run(args.subscribers, args.workers, args.baseline_seconds, distance=distance)
    )


def add_commands(commands: Commands) -> None:
    backup = commands.add_parser("backup", help="consistent copy of the database and keys")
    backup.add_argument("path", type=Path)
    backup.set_defaults(run=_backup)
    commands.add_parser("stats", help="readers by topic and recent alerts").set_defaults(run=_stats)
    bench = commands.add_parser("bench", help="measure one alert end to end, with baselines")
    bench.add_argument("--subscribers", type=_count, default=100_000, help="readers (100000)")
    bench.add_argument(
        "--workers", type=_workers, default=os.cpu_count() or 1, help="worker processes"
    )
    bench.add_argument(
        "--baseline-seconds", type=_seconds, default=8.0, help="time per pywebpush baseline"
    )
    bench.add_argument(
        "--latency",
        type=_latency,
        default=0.0,
        metavar="MS",
        help="the push-service stand-in answers each request after MS milliseconds (0-10000)",
    )
    bench.add_argument(
        "--tls",
        action="store_true",
        help="the stand-in speaks TLS (HTTP/2 and HTTP/1.1 by ALPN), its certificate trusted "
        "for this run only",
    )
    bench.set_defaults(run=_bench)
