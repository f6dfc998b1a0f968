"""`pushdesk editors ...`: editors' API keys (printed once, stored hashed)."""

from __future__ import annotations

import argparse
import re

from ..config import Settings
from ..errors import CliError
from ..store import (
    Store,
)
from ..tokens import hash_secret, new_secret
from .common import (
    Commands,
    Parser,
    _date,
    with_store,
)

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


def _editors_revoke(settings: Settings, args: argparse.Namespace) -> int:
    if not with_store(settings, lambda store: store.revoke_editor(args.name)):
        raise CliError(f"no active editor named {args.name!r}")
    print(f"editor {args.name} revoked")
    return 0


def add_commands(commands: Commands) -> None:
    editors = commands.add_parser("editors", help="editors' API keys").add_subparsers(
        dest="editors_command", required=True, parser_class=Parser
    )
    add = editors.add_parser("add", help="create an editor; prints the API key once")
    add.add_argument("name")
    add.set_defaults(run=_editors_add)
    editors.add_parser("list", help="list editors").set_defaults(run=_editors_list)
    revoke = editors.add_parser("revoke", help="revoke an editor's key")
    revoke.add_argument("name")
    revoke.set_defaults(run=_editors_revoke)
