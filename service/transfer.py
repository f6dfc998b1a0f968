"""Moving readers in and out: JSON lines of `PushSubscription.toJSON()` plus preferences.

What a newsroom leaving another push provider needs, and how the benchmark loads readers fast.
Each line is checked with the API's own validation; a bad line is reported with its number and
skipped, and good lines go in by the thousand in single transactions.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from .api.errors import ApiError
from .api.validation import PREFERENCE_JSON, parse_preferences, parse_push_subscription
from .config import Settings
from .store import NewSubscription, Store, Subscription
from .tokens import hash_secret, new_secret

SUBSCRIPTION_FIELDS = ("endpoint", "expirationTime", "keys")
BATCH = 5000
YIELD_EVERY = 500


@dataclass
class ImportReport:
    created: int = 0
    updated: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def skipped(self) -> int:
        return len(self.problems)


def parse_line(text: str, settings: Settings, key_id: str) -> NewSubscription:
    """One line → a subscription ready for the store; raises ValueError with a clear message."""
    try:
        data = json.loads(text)
    except ValueError:
        raise ValueError("not valid JSON") from None
    if not isinstance(data, dict):
        raise ValueError("must be a JSON object")
    unknown = sorted(set(data) - set(SUBSCRIPTION_FIELDS) - set(PREFERENCE_JSON))
    if unknown:
        raise ValueError(f"{unknown[0]}: is not a known field")
    try:
        endpoint, p256dh, auth = parse_push_subscription(
            {k: data[k] for k in SUBSCRIPTION_FIELDS if k in data}, settings
        )
        prefs = parse_preferences(data, settings)
    except ApiError as exc:
        raise ValueError(exc.message.removeprefix("subscription.")) from None
    return NewSubscription(
        endpoint=endpoint,
        p256dh=p256dh,
        auth=auth,
        vapid_key_id=key_id,
        token_hash=hash_secret(
            new_secret()
        ),  # the reader's widget gets a token when it resubscribes
        preferences=prefs,
        default_topics=tuple(settings.default_topics),
    )


async def import_lines(
    store: Store, lines: Iterable[str], settings: Settings, key_id: str
) -> ImportReport:
    """Parse and check each line; write good ones by the thousand, each batch while the next is
    parsed (SQLite works in aiosqlite's thread, parsing in this one), batches in file order."""
    report = ImportReport()
    batch: dict[str, NewSubscription] = {}
    writing: asyncio.Task[None] | None = None
    try:
        for number, text in enumerate(lines, 1):
            if number % YIELD_EVERY == 0:
                await asyncio.sleep(0)  # let the batch being written go on to its next statement
            if not text.strip():
                continue
            try:
                item = parse_line(text, settings, key_id)
            except ValueError as exc:
                report.problems.append(f"line {number}: {exc}")
                continue
            batch[item.endpoint] = item  # a repeated endpoint: the later line wins
            if len(batch) >= BATCH:
                if writing is not None:
                    await writing
                writing = asyncio.create_task(_write(store, list(batch.values()), report))
                batch = {}
        if writing is not None:
            await writing
            writing = None
        await _write(store, list(batch.values()), report)
    finally:
        if writing is not None:  # parsing failed (the file could not be read): finish the batch
            await writing
    return report


async def _write(store: Store, items: list[NewSubscription], report: ImportReport) -> None:
    if items:
        created, updated = await store.import_subscriptions(items)
        report.created += created
        report.updated += updated


def export_json(sub: Subscription) -> dict[str, Any]:
    from .webpush.encoding import b64url_encode

    prefs = sub.preferences_json()
    prefs.pop("id")
    return {
        "endpoint": sub.endpoint,
        "expirationTime": None,
        "keys": {"p256dh": b64url_encode(sub.p256dh), "auth": b64url_encode(sub.auth)},
        **prefs,
    }


async def export_lines(store: Store, out: TextIO) -> int:
    count = 0
    async for sub in _all_subscriptions(store):
        out.write(json.dumps(export_json(sub), separators=(",", ":")) + "\n")
        count += 1
    return count


async def _all_subscriptions(store: Store) -> AsyncIterator[Subscription]:
    after = 0
    while True:
        page = await store.list_subscriptions(after, 1000)
        if not page:
            return
        for sub in page:
            yield sub
        after = page[-1].id


def read_lines(path: Path) -> Iterator[str]:
    with path.open(encoding="utf-8") as fh:
        yield from fh
