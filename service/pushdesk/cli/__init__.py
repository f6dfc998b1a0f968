"""The `pushdesk` command. Every failure is one line on stderr and a non-zero exit.

One module per area of commands; each adds its subcommands to the parser here."""

from __future__ import annotations

import argparse
import sys

from ..config import ConfigError, load_settings
from ..errors import CliError
from ..store import TRANSIENT_ERRORS, StorageProblem, StoreError, storage_problem
from ..webpush.vapid import VapidKeyError
from . import alerts, editors, keys, ops, readers, service
from .common import EXIT_USAGE, Parser


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="pushdesk", description="Self-hosted Web Push for news publishers")
    parser.add_argument("--config", metavar="FILE", help="TOML settings file (env vars win)")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    for area in (service, keys, ops, alerts, editors, readers):
        area.add_commands(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings(config_file=args.config)
        return int(args.run(settings, args) or 0)
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"pushdesk: config: {problem}", file=sys.stderr)
        return EXIT_USAGE
    except (CliError, StoreError, VapidKeyError) as exc:
        print(f"pushdesk: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # one line, never a traceback: say what it is
        print(f"pushdesk: {describe_failure(exc)}", file=sys.stderr)
        return 1


def describe_failure(exc: Exception) -> str:
    problem = storage_problem(exc)
    if problem is StorageProblem.DISK_FULL:
        return "the database's disk is full; nothing more was stored"
    if problem is StorageProblem.READ_ONLY:
        return "the database is read-only; nothing was changed"
    if isinstance(exc, OSError):
        return str(exc)
    if isinstance(exc, TRANSIENT_ERRORS):
        return f"database error: {exc}"
    return f"internal error ({type(exc).__name__}: {exc}); this is a bug, please report it"
