"""`pushdesk keys ...`: VAPID keys (the rotation rules live in vapid_keys.py)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..config import Settings
from ..store import (
    Store,
)
from ..vapid_keys import active_public_key, create_key, generate_first_key, retire_key
from .common import (
    Commands,
    Parser,
    _date,
    with_store,
)


def _keys_generate(settings: Settings, args: argparse.Namespace) -> int:
    async def action(store: Store) -> str:
        key_id, public = await generate_first_key(store, settings.keys_dir, args.force)
        return f"{key_id} {public}"

    print(with_store(settings, action))
    return 0


def _keys_show(settings: Settings, args: argparse.Namespace) -> int:
    print(with_store(settings, active_public_key))
    return 0


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
    with_store(settings, lambda store: retire_key(store, args.key_id, args.force))
    print(f"key {args.key_id} retired")
    return 0


def add_commands(commands: Commands) -> None:
    keys = commands.add_parser("keys", help="VAPID keys").add_subparsers(
        dest="keys_command", required=True, parser_class=Parser
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
