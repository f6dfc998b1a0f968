"""The `pushdesk` command. Every failure is one line on stderr and a non-zero exit."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import re
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any, NoReturn, TypeVar

from .config import ConfigError, Settings, load_settings
from .errors import CliError
from .fanout.worker import READER_RESULT, reader_outcome
from .inputs import parse_article_url, parse_text
from .limits import MAX_ALERT_TTL, MAX_BODY_TEXT, MAX_TITLE
from .logs import setup_logging
from .secure_files import written_whole
from .store import (
    TRANSIENT_ERRORS,
    StorageProblem,
    Store,
    StoreError,
    open_store,
    storage_problem,
)
from .tokens import hash_secret, new_secret
from .vapid_keys import create_key, load_keyring
from .webpush.classify import Result
from .webpush.payload import Message, PayloadTooLarge
from .webpush.sender import URGENCIES, Sender, SenderOptions, Target, prepare
from .webpush.vapid import VapidKeyError

T = TypeVar("T")
EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
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


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="pushdesk", description="Self-hosted Web Push for news publishers")
    parser.add_argument("--config", metavar="FILE", help="TOML settings file (env vars win)")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    serve = commands.add_parser("serve", help="run the API and the fan-out workers")
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=_port, help="port to listen on (default 8080)")
    serve.add_argument(
        "--workers",
        type=_workers,
        help="worker processes beside the API (default: one per core); 0 = in the API's loop",
    )
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
    keys.add_parser("list", help="every key with its status and readers").set_defaults(
        run=_keys_list
    )
    keys.add_parser(
        "rotate", help="add a new active key; readers keep theirs until their widget moves them"
    ).set_defaults(run=_keys_rotate)
    retire = keys.add_parser("retire", help="stop using a key no reader needs any more")
    retire.add_argument("key_id", metavar="ID")
    retire.add_argument("--force", action="store_true", help="even if readers still use it")
    retire.set_defaults(run=_keys_retire)

    backup = commands.add_parser("backup", help="consistent copy of the database and keys")
    backup.add_argument("path", type=Path)
    backup.set_defaults(run=_backup)
    commands.add_parser("stats", help="readers by topic and recent alerts").set_defaults(run=_stats)

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

    editors = commands.add_parser("editors", help="editors' API keys").add_subparsers(
        dest="editors_command", required=True, parser_class=_Parser
    )
    add = editors.add_parser("add", help="create an editor; prints the API key once")
    add.add_argument("name")
    add.set_defaults(run=_editors_add)
    editors.add_parser("list", help="list editors").set_defaults(run=_editors_list)
    revoke = editors.add_parser("revoke", help="revoke an editor's key")
    revoke.add_argument("name")
    revoke.set_defaults(run=_editors_revoke)

    subs = commands.add_parser("subscriptions", help="move readers in and out").add_subparsers(
        dest="subscriptions_command", required=True, parser_class=_Parser
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

    worker = commands.add_parser("worker", help="run fan-out workers only")
    worker.add_argument("--concurrency", type=_positive, help="messages in flight (default 256)")
    worker.set_defaults(run=_worker)

    bench = commands.add_parser("bench", help="measure one alert end to end, with baselines")
    bench.add_argument("--subscribers", type=_count, default=100_000, help="readers (100000)")
    bench.add_argument(
        "--workers", type=_workers, default=os.cpu_count() or 1, help="worker processes"
    )
    bench.add_argument(
        "--baseline-seconds", type=_seconds, default=8.0, help="time per pywebpush baseline"
    )
    bench.set_defaults(run=_bench)

    send = commands.add_parser("send", help="push an alert through a running service")
    send.add_argument("--title", required=True)
    send.add_argument("--url", required=True)
    send.add_argument("--topic", action="append", dest="topics", metavar="ID")
    send.add_argument("--body")
    send.add_argument("--icon")
    send.add_argument("--image")
    send.add_argument("--ttl", type=_ttl)
    send.add_argument("--urgency", choices=URGENCIES)
    send.add_argument("--ignore-quiet-hours", action="store_true")
    send.add_argument("--force", action="store_true", help="send even if a duplicate")
    send.add_argument("--dry-run", action="store_true", help="only count the audience")
    send.add_argument("--idempotency-key")
    send.add_argument("--wait", action="store_true", help="show progress until done")
    send.set_defaults(run=_send)
    return parser


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

    from .app import Runtime, create_app, worker_options

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
        if outcome.result in READER_RESULT:  # gone, refused: recorded as the fan-out would
            await store.record_outcomes([reader_outcome(sub.id, outcome)])
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


EDITOR_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")


def _editors_add(settings: Settings, args: argparse.Namespace) -> int:
    if not EDITOR_NAME.match(args.name):
        raise CliError("editor names are 1-64 of letters, digits and . _ @ -")
    key = new_secret()

    async def action(store: Store) -> bool:
        return await store.add_editor(args.name, hash_secret(key))

    if not with_store(settings, action):
        raise CliError(f"an editor named {args.name!r} exists already")
    print(f"editor {args.name} added; their API key (shown once, keep it safe):")
    print(key)
    return 0


def _editors_list(settings: Settings, args: argparse.Namespace) -> int:
    editors = with_store(settings, lambda store: store.list_editors())
    for name, created, revoked in editors:
        state = "revoked " + _date(revoked) if revoked else "active"
        print(f"{name}\tadded {_date(created)}\t{state}")
    return 0


def _date(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.gmtime(ts))


def _editors_revoke(settings: Settings, args: argparse.Namespace) -> int:
    if not with_store(settings, lambda store: store.revoke_editor(args.name)):
        raise CliError(f"no active editor named {args.name!r}")
    print(f"editor {args.name} revoked")
    return 0


def _worker(settings: Settings, args: argparse.Namespace) -> int:
    from .app import run_workers, worker_options

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


def _send(settings: Settings, args: argparse.Namespace) -> int:
    from .editor_client import EditorClient, send_alert

    body: dict[str, Any] = {"title": args.title, "url": args.url}
    optional = {
        "topics": args.topics,
        "body": args.body,
        "icon": args.icon,
        "image": args.image,
        "ttl": args.ttl,
        "urgency": args.urgency,
    }
    body.update({k: v for k, v in optional.items() if v is not None})
    if args.ignore_quiet_hours:
        body["respectQuietHours"] = False
    if args.force:
        body["force"] = True
    if args.dry_run:
        body["dryRun"] = True
    client = EditorClient.from_environment()
    return asyncio.run(send_alert(client, body, args.idempotency_key, args.wait))


MAX_PROBLEMS_SHOWN = 50
PARALLEL_IMPORT = 1 << 20  # bytes (~4,000 readers): above, lines are checked on every core


def _subscriptions_import(settings: Settings, args: argparse.Namespace) -> int:
    from .transfer import import_lines, read_lines

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
    from .transfer import export_lines

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


def _bench(settings: Settings, args: argparse.Namespace) -> int:
    import importlib.util

    missing = [m for m in ("pywebpush", "http_ece") if importlib.util.find_spec(m) is None]
    if missing:  # the baselines' libraries are not in a production install
        raise CliError(f"the bench needs {', '.join(missing)}: pip install 'pushdesk[bench]'")
    from . import bench

    return asyncio.run(bench.run(args.subscribers, args.workers, args.baseline_seconds))


def _keys_list(settings: Settings, args: argparse.Namespace) -> int:
    async def action(store: Store) -> list[tuple[Any, int]]:
        readers = await store.count_subscriptions_by_key()
        return [(k, readers.get(k.id, 0)) for k in await store.list_vapid_keys()]

    for key, readers in with_store(settings, action):
        print(f"{key.id}\t{key.status}\t{readers} readers\tadded {_date(key.created_at)}")
    return 0


def _keys_rotate(settings: Settings, args: argparse.Namespace) -> int:
    async def action(store: Store) -> str:
        key_id, public = await create_key(store, settings.keys_dir)
        return f"{key_id} {public}"

    print(with_store(settings, action))
    print(
        "new readers get this key; existing readers keep theirs until the widget moves them "
        "(pushdesk keys list shows who is left)",
        file=sys.stderr,
    )
    return 0


def _keys_retire(settings: Settings, args: argparse.Namespace) -> int:
    async def action(store: Store) -> None:
        keys = {k.id: k.status for k in await store.list_vapid_keys()}
        if args.key_id not in keys:
            raise CliError(f"no VAPID key {args.key_id!r} (see pushdesk keys list)")
        if keys[args.key_id] == "active":
            raise CliError("that is the active key: run `pushdesk keys rotate` first")
        readers = (await store.count_subscriptions_by_key()).get(args.key_id, 0)
        if readers and not args.force:
            raise CliError(
                f"{readers} readers still use key {args.key_id}; retiring it cuts them off "
                "(--force to do it anyway)"
            )
        await store.set_vapid_key_status(args.key_id, "retired")

    with_store(settings, action)
    print(f"key {args.key_id} retired")
    return 0


def _backup(settings: Settings, args: argparse.Namespace) -> int:
    from .backup import backup_sqlite

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
