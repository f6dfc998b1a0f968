"""What every command shares: the one-line argument parser, the store, the event loop and
argument types."""

from __future__ import annotations

import argparse
import asyncio
import re
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, NoReturn, TypeVar

from ..config import Settings
from ..limits import MAX_ALERT_TTL
from ..store import (
    Store,
    StoreError,
    open_store,
)

T = TypeVar("T")
EXIT_USAGE = 2
Commands = Any  # argparse's subparsers action (a private type)


class Parser(argparse.ArgumentParser):
    """One-line errors; and `--config FILE` accepted after any command too."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        if (
            self.prog != "pushdesk"
        ):  # `pushdesk serve --config F` as well as `pushdesk --config F serve`
            self.add_argument(
                "--config",
                metavar="FILE",
                default=argparse.SUPPRESS,
                help="TOML settings file (environment variables win)",
            )

    def error(self, message: str) -> NoReturn:  # argparse prints a usage block; keep one line
        self.exit(EXIT_USAGE, f"pushdesk: {message} (see pushdesk {self.prog.split()[-1]} -h)\n")


def with_store(settings: Settings, action: Callable[[Store], Awaitable[Any]]) -> Any:
    """Run one operator action against the configured store, then close it."""

    async def run() -> Any:
        try:
            store = await open_store(settings.database)
        except (OSError, ConnectionError) as exc:
            raise StoreError(f"cannot open the database {settings.database}: {exc}") from None
        try:
            return await action(store)
        finally:
            await store.close()

    return asyncio.run(run())


def use_uvloop() -> None:
    """Run asyncio on uvloop when it is installed: +15% messages/s measured (README)."""
    try:
        import uvloop
    except ImportError:
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def run_loop(main: Coroutine[Any, Any, T]) -> T:
    use_uvloop()
    return asyncio.run(main)


def _port(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"invalid port {text!r} (1-65535)")
    return int(text)


def _count(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 10_000_000:
        raise argparse.ArgumentTypeError(f"invalid count {text!r} (1-10000000)")
    return int(text)


def _workers(text: str) -> int:
    if not text.isdigit() or int(text) > 256:
        raise argparse.ArgumentTypeError(f"invalid number of workers {text!r} (0-256)")
    return int(text)


def _ttl(text: str) -> int:
    """The API's limit for alerts, for `send` and `push` alike."""
    if not re.fullmatch(r"[0-9]{1,6}", text) or int(text) > MAX_ALERT_TTL:
        raise argparse.ArgumentTypeError(f"invalid ttl {text!r} (0-{MAX_ALERT_TTL} seconds)")
    return int(text)


def _positive(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 10000:
        raise argparse.ArgumentTypeError(f"invalid number {text!r} (1-10000)")
    return int(text)


def _number_within(text: str, high: float) -> float | None:
    """`text` as a number from 0 to `high`, or None (NaN and infinities are outside)."""
    try:
        value = float(text)
    except ValueError:
        return None
    return value if 0 <= value <= high else None


def _latency(text: str) -> float:
    """Milliseconds a push service takes to answer, for the bench's stand-in."""
    value = _number_within(text, 10_000)
    if value is None:
        raise argparse.ArgumentTypeError(f"invalid latency {text!r} (0-10000 milliseconds)")
    return value


def _seconds(text: str) -> float:
    value = _number_within(text, 86400)
    if value is None:
        raise argparse.ArgumentTypeError(f"invalid number of seconds {text!r}")
    return value


def _date(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.gmtime(ts))
