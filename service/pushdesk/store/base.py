"""The one interface every store implements. Callers never see SQL or a driver."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

from ..errors import PushdeskError
from .models import (
    Alert,
    AlertCreation,
    Checkpoint,
    DueDelivery,
    EventKind,
    EventRecord,
    NewAlert,
    NewSubscription,
    Preferences,
    ReaderOutcome,
    Recipient,
    Settlement,
    Shard,
    Subscription,
    VapidKeyRecord,
)

# (lo, hi) of all subscription ids -> the (lo, hi] ranges of an alert's shards
RangeSplitter = Callable[[int, int], list[tuple[int, int]]]

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


class StoreError(PushdeskError):
    """A store-level problem worth a clear message (conflict, unavailable database)."""


def transient_errors() -> tuple[type[BaseException], ...]:
    """Database errors that pass (locked, restarting, connection dropped): retry, don't fail."""
    import sqlite3

    errors: list[type[BaseException]] = [sqlite3.OperationalError, ConnectionError, OSError]
    try:
        import asyncpg

        errors += [
            asyncpg.exceptions.ConnectionDoesNotExistError,
            asyncpg.exceptions.InterfaceError,
            asyncpg.exceptions.CannotConnectNowError,
            asyncpg.exceptions.AdminShutdownError,
            asyncpg.exceptions.ConnectionFailureError,
            # a connection cut in the middle of an operation can be left in a broken state
            asyncpg.exceptions.InternalClientError,
            # deadlock detected, serialization failure: PostgreSQL rolled back; try again
            asyncpg.exceptions.TransactionRollbackError,
        ]
    except ImportError:
        pass
    return tuple(errors)


TRANSIENT_ERRORS = transient_errors()


class StorageProblem(StrEnum):
    """A database that cannot take writes for a reason an operator must fix (not a busy one)."""

    DISK_FULL = "disk_full"
    READ_ONLY = "read_only"


SQLITE_READONLY, SQLITE_FULL = 8, 13  # primary result codes (sqlite3.h)


def storage_problem(exc: BaseException) -> StorageProblem | None:
    """Whether `exc` says the disk is full or the database read-only, on either store."""
    import sqlite3

    if isinstance(exc, sqlite3.Error):
        code = getattr(exc, "sqlite_errorcode", None)
        primary = code & 0xFF if isinstance(code, int) else None
        text = str(exc).lower()
        if primary == SQLITE_FULL or "disk is full" in text:
            return StorageProblem.DISK_FULL
        if primary == SQLITE_READONLY or "readonly database" in text:
            return StorageProblem.READ_ONLY
        return None
    name = type(exc).__name__
    if name == "DiskFullError":  # asyncpg: SQLSTATE 53100
        return StorageProblem.DISK_FULL
    if name == "ReadOnlySQLTransactionError":  # asyncpg: 25006, e.g. a standby
        return StorageProblem.READ_ONLY
    return None


class EndpointTaken(StoreError):
    """The endpoint already belongs to another subscription."""


class ReaderStore(Protocol):
    """Subscriptions, preferences and VAPID key records."""

    async def migrate(self) -> None:
        """Apply pending schema migrations; safe to call from several processes at once."""

    dialect: str  # "sqlite" or "postgres": names its migrations folder

    async def close(self) -> None:
        """Close every connection (and the listener); the store is not used again."""

    async def schema_version(self) -> int:
        """The newest migration applied (0 on an empty database); /readyz compares it."""

    async def ping(self) -> bool:
        """True when the database answers."""

    async def listen_for_alerts(self, wake: Callable[[], None]) -> None:
        """Call `wake` when any process stores an alert (PostgreSQL NOTIFY; SQLite polls)."""

    # -- VAPID keys ------------------------------------------------------------------
    async def list_vapid_keys(self) -> list[VapidKeyRecord]:
        """Every key record (active, retiring, retired), oldest first."""

    async def add_vapid_key(self, key_id: str, public_key: str, status: str) -> None:
        """Record a key whose file was just written; an `active` one demotes the active key
        to `retiring` in the same transaction (rotation: there is one active key)."""

    async def set_vapid_key_status(self, key_id: str, status: str) -> bool:
        """Change a key's status (retire it); False for an unknown key."""

    async def count_subscriptions_by_key(self) -> dict[str, int]:
        """Readers by the VAPID key they subscribed with: who a retirement would cut off."""

    # -- subscriptions -----------------------------------------------------------------
    async def upsert_subscription(
        self, new: NewSubscription, proof: bytes | None = None
    ) -> tuple[Subscription, bool]:
        """Insert, or update the row with the same endpoint; True when it was created.

        On update only the preferences `new.preferences` names (not KEEP) change, the keys and
        the token hash are replaced. An endpoint known with other keys is refreshed only when
        `proof` (the hash of the token the request presented) is that reader's token hash;
        otherwise EndpointTaken, and nothing changes (`rows.may_take_over`).
        """

    async def import_subscriptions(self, items: list[NewSubscription]) -> tuple[int, int]:
        """Bulk add (created, updated): readers moving from another provider, benchmarks."""

    def bulk_loading(self) -> AbstractAsyncContextManager[None]:
        """Around many import_subscriptions calls: the database may trade memory for speed."""

    async def get_subscription(self, public_id: str) -> Subscription | None:
        """The reader with this public id (the API's), with their topics; None if unknown."""

    async def get_subscription_by_id(self, sub_id: int) -> Subscription | None:
        """The reader with this row id (the fan-out's and the shards'); None if gone."""

    async def token_hash(self, public_id: str) -> bytes | None:
        """The stored token hash, for the API's constant-time check."""

    async def update_subscription(
        self, public_id: str, preferences: Preferences, renewal: NewSubscription | None = None
    ) -> Subscription | None:
        """Change preferences and, with `renewal`, the endpoint and keys (pushsubscriptionchange).

        Raises EndpointTaken when the renewal's endpoint belongs to another subscription.
        """

    async def delete_subscription(self, public_id: str) -> bool:
        """Delete a reader with their topics, daily counts and pending deliveries (which count
        `skipped` on their alerts, so counts still add up); False if unknown."""

    async def list_subscriptions(self, after_id: int = 0, limit: int = 1000) -> list[Subscription]:
        """Subscriptions in id order after `after_id`: page through all readers (export)."""

    async def record_outcomes(self, outcomes: list[ReaderOutcome]) -> None:
        """Write what push services said about subscriptions.

        `gone` deletes the subscription; `vapid_rejected` marks it so it is not sent to again
        until the browser subscribes anew; other failures are noted as its last failure.
        """

    async def count_subscriptions(self) -> int:
        """All readers (`pushdesk stats`)."""

    async def topic_counts(self) -> dict[str, int]:
        """Readers by topic (a reader of several topics counts in each): /metrics, stats."""


class AlertStore(Protocol):
    """Editors, alerts, and the fan-out's shared work queue."""

    async def add_editor(self, name: str, key_hash: bytes) -> bool:
        """False when the name is taken."""

    async def list_editors(self) -> list[tuple[str, float, float | None]]:
        """(name, added, revoked or None) for each editor, by name."""

    async def revoke_editor(self, name: str) -> bool:
        """Revoke an active editor's key at once; False if there is no such active editor."""

    async def editor_for_key(self, key_hash: bytes) -> str | None:
        """The active editor whose key hashes to `key_hash`; None for unknown or revoked."""

    async def count_audience(self, topics: list[str]) -> int:
        """Readers following any of `topics` now (an estimate for the editor: caps, quiet
        hours and readers joining while it sends make the final figure)."""

    async def create_alert(
        self,
        new: NewAlert,
        *,
        idempotency_window: float,
        duplicate_window: float | None,
    ) -> AlertCreation:
        """Atomically: replay an idempotent request, refuse a duplicate, or store a new alert.

        A new alert is stored before its audience is counted, so workers start at once."""

    async def complete_creation(
        self, alert_id: int, audience: int, first_response: dict[str, Any] | None
    ) -> None:
        """The audience counted while the workers started (kept only while the alert is not
        finished: finishing writes the exact number), and the answer an idempotent replay
        gets."""

    async def get_alert(self, public_id: str) -> Alert | None:
        """The alert with this public id (the API's and the Topic header's); None if unknown."""

    async def get_alert_by_id(self, alert_id: int) -> Alert | None:
        """The alert with this row id (what shards and deliveries refer to)."""

    async def list_alerts(self, limit: int) -> list[Alert]:
        """The newest `limit` alerts, newest first."""

    async def cancel_alert(self, public_id: str) -> Alert | None:
        """Stop what is not yet sent: open shards close (their lease owners keep them, so a
        batch in flight still writes its outcomes), pending deferrals count `skipped`, and the
        alert becomes `cancelled` (`rows.cancelled_status`: a finished alert with nothing left
        to stop keeps its status). Locks shards before the alert row, the order checkpoints
        use. None for an unknown alert."""

    async def plan_next_alert(self, split: RangeSplitter) -> Alert | None:
        """Write the shards of the oldest queued alert that has none (ranges of subscription
        ids from `split`); one with no readers at all is finished at once. None when every
        alert is planned. Safe for many workers at once: each alert is planned once."""

    async def claim_shard(self, owner: str, lease: float) -> Shard | None:
        """A queued shard, or one whose lease expired (its worker died); None when idle."""

    async def recipients(
        self, topics: list[str], after: int, upto: int, limit: int
    ) -> list[Recipient]:
        """Up to `limit` readers following any of `topics` with ids in (after, upto], in id
        order: the next batch of a shard, from its cursor."""

    async def daily_counts(self, keys: list[tuple[int, str]]) -> dict[tuple[int, str], int]:
        """Alerts delivered to each (reader id, their local day) so far: the daily cap."""

    async def checkpoint(self, cp: Checkpoint, owner: str, lease: float) -> str | None:
        """Write one batch in one transaction: its counts, readers' outcomes (gone ones
        deleted), deferrals (with their attempts), daily counts and delivery times, and move
        the shard's cursor and lease on. Returns the alert's status, so the worker notices a
        cancel; None when `owner` no longer holds the shard (another worker took it over).

        Readers deleted while the batch was in flight leave no rows (`Checkpoint.
        without_departed`). A checkpoint whose cursor the shard has already passed was
        written before (its commit's answer was lost): it is not counted twice. A shard
        closed by a cancel still takes its owner's last batch."""

    async def finish_shard(self, shard: Shard, owner: str) -> bool:
        """Close a worked shard; the alert's last one finishes the alert (audience made exact
        from its counts, status `done`, or `failed` when nobody was delivered to). False when
        the lease was lost."""

    async def release_shard(self, shard: Shard, owner: str) -> None:
        """Hand a shard back (a graceful stop): another worker resumes it from its cursor."""

    async def claim_due(
        self, owner: str, now: float, limit: int, lease: float
    ) -> list[DueDelivery]:
        """Lease up to `limit` deferred deliveries due by `now` (quiet hours over, retries due),
        earliest first, with their readers and attempts so far; none another worker holds."""

    async def settle(self, owner: str, settlements: list[Settlement]) -> None:
        """Write the results of due deliveries this worker holds: each leaves `deferred` for
        its final count (or is rescheduled with its attempts). One the worker no longer
        holds (cancelled, its reader deleted, taken over) is passed over."""

    async def alert_status_counts(self) -> dict[str, int]:
        """Alerts by status (/metrics)."""

    async def record_event(
        self, alert_public_id: str, subscription_public_id: str, kind: EventKind
    ) -> EventRecord:
        """Count a browser's `shown`/`clicked` once per reader and alert.

        Only a reader in the alert's audience counts: subscribed when it was planned (inside
        its shards' ranges) and following one of its topics.
        """

    async def delivery_histogram(self, alert_id: int) -> list[tuple[int, int]]:
        """(bucket ms since the alert was created, deliveries) in bucket order."""

    async def event_seconds(self, alert_id: int) -> list[tuple[int, str, int]]:
        """(second since the alert was created, shown|clicked, count)."""

    async def has_work(self, now: float) -> bool:
        """Read-only: is anything plannable, claimable or due? (cheap idle polling)"""

    async def pending_work(self) -> dict[str, int]:
        """{shards, deferred, unplanned}: open shards, deferred deliveries, unplanned alerts."""

    async def next_due_time(self) -> float | None:
        """When the earliest deferred delivery is due, so an idle worker sleeps until then."""


class Store(ReaderStore, AlertStore, Protocol):
    """Everything the service needs from a database: SQLite and PostgreSQL implement it."""


def migration_files(dialect: str) -> list[tuple[int, str, str]]:
    """(version, name, sql) for each migration of a dialect, in order."""
    found = []
    for path in sorted((MIGRATIONS_DIR / dialect).glob("*.sql")):
        version = int(path.name.split("_", 1)[0])
        found.append((version, path.stem, path.read_text(encoding="utf-8")))
    return found
