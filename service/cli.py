"""The `pushdesk` command. Every failure is one line on stderr and a non-zero exit."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from .api.errors import ApiError
from .api.validation import MAX_BODY_TEXT, MAX_TITLE, parse_article_url, parse_text
from .config import ConfigError, Settings, load_settings
from .store import Store, StoreError, open_store
from .vapid_keys import create_key, load_keyring
from .webpush.classify import Result
from .webpush.payload import Message, PayloadTooLarge
from .webpush.sender import MAX_TTL, URGENCIES, Sender, SenderOptions, Target, prepare
from .webpush.vapid import VapidKeyError

EXIT_USAGE = 2


class CliError(Exception):
    """A one-line message for the operator."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse prints a usage block; keep one line
        self.exit(EXIT_USAGE, f"pushdesk: {message} (see pushdesk {self.prog.split()[-1]} -h)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="pushdesk", description="Self-hosted Web Push for news publishers")
    parser.add_argument("--config", metavar="FILE", help="TOML settings file (env vars win)")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    serve = commands.add_parser("serve", help="run the API and the fan-out workers")
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=_port, help="port to listen on (default 8080)")
    serve.set_defaults(run=_serve)

    keys = commands.add_parser("keys", help="VAPID keys").add_subparsers(
        dest="keys_command", required=True, parser_class=_Parser
    )
    generate = keys.add_parser("generate", help="create the VAPID key new readers get")
    generate.add_argument(
        "--force",
        action="store_true",
        help="replace the active key (earlier readers keep theirs until it is retired)",
    )
    generate.set_defaults(run=_keys_generate)
    show = keys.add_parser("show", help="print the active public key (applicationServerKey)")
    show.set_defaults(run=_keys_show)

    push = commands.add_parser("push", help="send one message to one subscriber (a check)")
    push.add_argument("subscription", metavar="SUBSCRIPTION_ID")
    push.add_argument("--title", required=True)
    push.add_argument("--url", required=True)
    push.add_argument("--body")
    push.add_argument("--ttl", type=_ttl, default=3600, help="seconds (default 3600)")
    push.add_argument("--urgency", choices=URGENCIES, default="normal")
    push.add_argument(
        "--wait", type=_seconds, default=60.0, help="longest in-line retry wait (default 60 s)"
    )
    push.set_defaults(run=_push)
    return parser


def _port(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"invalid port {text!r} (1-65535)")
    return int(text)


def _ttl(text: str) -> int:
    if not text.isdigit() or int(text) > MAX_TTL:
        raise argparse.ArgumentTypeError(f"invalid ttl {text!r} (0-{MAX_TTL} seconds)")
    return int(text)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1
    if not 0 <= value <= 86400:
        raise argparse.ArgumentTypeError(f"invalid number of seconds {text!r}")
    return value


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings(config_file=args.config)
        return int(args.run(settings, args) or 0)
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"pushdesk: config: {problem}", file=sys.stderr)
        return EXIT_USAGE
    except (CliError, StoreError, VapidKeyError, OSError) as exc:
        print(f"pushdesk: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


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


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    from aiohttp import web

    from .app import create_app

    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(message)s")
    host = args.host or settings.host
    port = args.port or settings.port
    web.run_app(create_app(settings), host=host, port=port, print=None, shutdown_timeout=10)
    return 0


def _keys_generate(settings: Settings, args: argparse.Namespace) -> int:
    async def action(store: Store) -> str:
        active = [k for k in await store.list_vapid_keys() if k.status == "active"]
        if active and not args.force:
            raise CliError(
                f"an active VAPID key exists ({active[0].id}); use --force to replace it "
                "(readers made with it keep it until it is retired)"
            )
        key_id, public = await create_key(store, settings.keys_dir)
        return f"{key_id} {public}"

    print(with_store(settings, action))
    return 0


def _keys_show(settings: Settings, args: argparse.Namespace) -> int:
    async def action(store: Store) -> str:
        active = [k for k in await store.list_vapid_keys() if k.status == "active"]
        if not active:
            raise CliError("no VAPID key yet: run `pushdesk keys generate` or start the service")
        return active[-1].public_key

    print(with_store(settings, action))
    return 0


def _push(settings: Settings, args: argparse.Namespace) -> int:
    """One message to one reader through the real engine; exit 0 only when it was accepted."""
    try:
        message = Message(
            title=parse_text(args.title, "--title", MAX_TITLE, required=True) or "",
            url=parse_article_url(args.url, "--url") or "",
            body=parse_text(args.body, "--body", MAX_BODY_TEXT),
        )
        prepared = prepare(message, ttl=args.ttl, urgency=args.urgency)
    except ApiError as exc:
        raise CliError(exc.message) from None
    except PayloadTooLarge as exc:
        raise CliError(str(exc)) from None

    async def action(store: Store) -> int:
        sub = await store.get_subscription(args.subscription)
        if sub is None:
            raise CliError(f"no subscription with id {args.subscription!r}")
        keyring = await load_keyring(store, settings.keys_dir, settings.vapid_subject)
        options = SenderOptions(allow_loopback=settings.allow_http_endpoints)
        async with Sender(keyring, options) as sender:
            target = Target(sub.endpoint, sub.p256dh, sub.auth, sub.vapid_key_id)
            outcome = await sender.send(target, prepared, max_wait=args.wait)
        await store.record_outcomes([(sub.id, outcome.result.value, outcome.reason)])
        status = f"HTTP {outcome.status}" if outcome.status else "no answer"
        plural = "s" if outcome.attempts != 1 else ""
        print(
            f"{outcome.result.value}: {status} from {outcome.origin} after "
            f"{outcome.attempts} attempt{plural} ({outcome.reason})"
        )
        if outcome.result is Result.GONE:
            print("the subscription was removed")
        return 0 if outcome.result is Result.DELIVERED else 1

    return int(with_store(settings, action))
