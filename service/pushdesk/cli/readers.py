"""`pushdesk subscriptions import|export`: readers in and out as JSON lines."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from ..config import Settings
from ..errors import CliError
from ..secure_files import written_whole
from ..store import (
    Store,
)
from .common import (
    Commands,
    Parser,
    with_store,
)

MAX_PROBLEMS_SHOWN = 50


PARALLEL_IMPORT = 1 << 20  # bytes (~4,000 readers): above, lines are checked on every core


def _subscriptions_import(settings: Settings, args: argparse.Namespace) -> int:
    from ..transfer import import_lines, read_lines

    if not args.file.is_file():
        raise CliError(f"{args.file} is not a readable file")

    async def action(store: Store) -> Any:
        keys = {k.id: k.status for k in await store.list_vapid_keys()}
        key_id = args.key_id or next((k for k, s in keys.items() if s == "active"), None)
        if key_id is None:
            raise CliError("no VAPID key yet: run `pushdesk keys generate` first")
        if keys.get(key_id) not in ("active", "retiring"):
            raise CliError(f"no usable VAPID key {key_id!r} (see pushdesk keys show)")
        processes = (os.cpu_count() or 1) if args.file.stat().st_size > PARALLEL_IMPORT else 1
        return await import_lines(
            store, read_lines(args.file), settings, key_id, processes=processes
        )

    try:
        report = with_store(settings, action)
    except UnicodeDecodeError:
        raise CliError(f"{args.file} is not UTF-8 text") from None
    for problem in report.problems[:MAX_PROBLEMS_SHOWN]:
        print(f"pushdesk: {args.file}: {problem}", file=sys.stderr)
    if report.skipped > MAX_PROBLEMS_SHOWN:
        print(f"pushdesk: ... and {report.skipped - MAX_PROBLEMS_SHOWN} more", file=sys.stderr)
    print(
        f"imported {report.created} new and {report.updated} known readers; "
        f"{report.skipped} lines skipped"
    )
    return 1 if report.problems else 0


def _subscriptions_export(settings: Settings, args: argparse.Namespace) -> int:
    from ..transfer import export_lines

    async def action(store: Store) -> int:
        if args.file == "-":
            return await export_lines(store, sys.stdout)
        # Endpoints and auth secrets: owner-only from the first byte, in place once whole.
        with written_whole(Path(args.file)) as out:
            return await export_lines(store, out)

    count = with_store(settings, action)
    if args.file != "-":
        print(f"exported {count} readers to {args.file}")
    return 0


def add_commands(commands: Commands) -> None:
    subs = commands.add_parser("subscriptions", help="move readers in and out").add_subparsers(
        dest="subscriptions_command", required=True, parser_class=Parser
    )
    imp = subs.add_parser("import", help="add readers from JSON lines (PushSubscription.toJSON)")
    imp.add_argument("file", type=Path)
    imp.add_argument(
        "--key-id", help="the VAPID key these readers subscribed with (default: active)"
    )
    imp.set_defaults(run=_subscriptions_import)
    exp = subs.add_parser("export", help="write every reader as JSON lines ('-' for stdout)")
    exp.add_argument("file")
    exp.set_defaults(run=_subscriptions_export)
