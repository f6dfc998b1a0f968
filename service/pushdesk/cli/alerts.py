"""`pushdesk send` (an alert through a running service) and `pushdesk push` (one reader)."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from ..config import Settings
from ..errors import CliError
from ..fanout.worker import READER_RESULT, reader_outcome
from ..inputs import parse_article_url, parse_text
from ..limits import MAX_BODY_TEXT, MAX_TITLE
from ..store import (
    Store,
)
from ..vapid_keys import load_keyring
from ..webpush.classify import Result
from ..webpush.payload import Message, PayloadTooLarge
from ..webpush.sender import URGENCIES, Sender, Target, prepare
from .common import (
    Commands,
    _seconds,
    _ttl,
    with_store,
)


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
        from ..app import sender_options

        sub = await store.get_subscription(args.subscription)
        if sub is None:
            raise CliError(f"no subscription with id {args.subscription!r}")
        keyring = await load_keyring(store, settings.keys_dir, settings.vapid_subject)
        async with Sender(keyring, sender_options(settings)) as sender:
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


def _send(settings: Settings, args: argparse.Namespace) -> int:
    from ..editor_client import EditorClient, send_alert

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


def add_commands(commands: Commands) -> None:
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
