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

    async def close(self) -> None: ...

    async def schema_version(self) -> int: ...

    async def ping(self) -> bool:
        """True when the database answers."""

    async def listen_for_alerts(self, wake: Callable[[], None]) -> None:
        """Call `wake` when any process stores an alert (PostgreSQL NOTIFY; SQLite polls)."""

    # -- VAPID keys ------------------------------------------------------------------
    async def list_vapid_keys(self) -> list[VapidKeyRecord]: ...

    async def add_vapid_key(self, key_id: str, public_key: str, status: str) -> None: ...

    async def set_vapid_key_status(self, key_id: str, status: str) -> bool: ...

    async def count_subscriptions_by_key(self) -> dict[str, int]: ...

    # -- subscriptions -----------------------------------------------------------------
    async def upsert_subscription(
        self, new: NewSubscription, proof: bytes | None = None
    ) -> tuple[Subscription, bool]:
        """Insert, or update the row with the same endpoint; True when it was created.

        On update only the preference keys present in `new.preferences` change, the keys and
        the token hash are replaced. An endpoint known with other keys is refreshed only when
        `proof` (the hash of the token the request presented) is that reader's token hash;
        otherwise EndpointTaken, and nothing changes (`rows.may_take_over`).
        """

    async def import_subscriptions(self, items: list[NewSubscription]) -> tuple[int, int]:
        """Bulk add (created, updated): readers moving from another provider, benchmarks."""

    def bulk_loading(self) -> AbstractAsyncContextManager[None]:
        """Around many import_subscriptions calls: the database may trade memory for speed."""

    async def get_subscription(self, public_id: str) -> Subscription | None: ...

    async def get_subscription_by_id(self, sub_id: int) -> Subscription | None: ...

    async def token_hash(self, public_id: str) -> bytes | None:
        """The stored token hash, for the API's constant-time check."""

    async def update_subscription(
        self, public_id: str, preferences: dict[str, Any], renewal: NewSubscription | None = None
    ) -> Subscription | None:
        """Change preferences and, with `renewal`, the endpoint and keys (pushsubscriptionchange).

        Raises EndpointTaken when the renewal's endpoint belongs to another subscription.
        """

    async def delete_subscription(self, public_id: str) -> bool: ...

    async def list_subscriptions(self, after_id: int = 0, limit: int = 1000) -> list[Subscription]:
        """Subscriptions in id order after `after_id`: page through all readers (export)."""

    async def record_outcomes(self, outcomes: list[ReaderOutcome]) -> None:
        """Write what push services said about subscriptions.

        `gone` deletes the subscription; `vapid_rejected` marks it so it is not sent to again
        until the browser subscribes anew; other failures are noted as its last failure.
        """

    async def count_subscriptions(self) -> int: ...

    async def topic_counts(self) -> dict[str, int]: ...


class AlertStore(Protocol):
    """Editors, alerts, and the fan-out's shared work queue."""

    async def add_editor(self, name: str, key_hash: bytes) -> bool:
        """False when the name is taken."""

    async def list_editors(self) -> list[tuple[str, float, float | None]]: ...

    async def revoke_editor(self, name: str) -> bool: ...

    async def editor_for_key(self, key_hash: bytes) -> str | None: ...

    async def count_audience(self, topics: list[str]) -> int: ...

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

    async def get_alert(self, public_id: str) -> Alert | None: ...

    async def get_alert_by_id(self, alert_id: int) -> Alert | None: ...

    async def list_alerts(self, limit: int) -> list[Alert]: ...

    async def cancel_alert(self, public_id: str) -> Alert | None: ...

    async def plan_next_alert(self, split: RangeSplitter) -> Alert | None: ...

    async def claim_shard(self, owner: str, lease: float) -> Shard | None:
        """A queued shard, or one whose lease expired (its worker died); None when idle."""

    async def recipients(
        self, topics: list[str], after: int, upto: int, limit: int
    ) -> list[Recipient]: ...

    async def daily_counts(self, keys: list[tuple[int, str]]) -> dict[tuple[int, str], int]: ...

    async def checkpoint(self, cp: Checkpoint, owner: str, lease: float) -> str | None: ...

    async def finish_shard(self, shard: Shard, owner: str) -> bool: ...

    async def release_shard(self, shard: Shard, owner: str) -> None: ...

    async def claim_due(
        self, owner: str, now: float, limit: int, lease: float
    ) -> list[DueDelivery]: ...

    async def settle(self, owner: str, settlements: list[Settlement]) -> None: ...

    async def alert_status_counts(self) -> dict[str, int]: ...

    async def record_event(
        self, alert_public_id: str, subscription_public_id: str, kind: EventKind
    ) -> EventRecord:
        """Count a browser's `shown`/`clicked` once per reader and alert.

        Only a reader in the alert's audience counts: subscribed when it was planned (inside
        its shards' ranges) and following one of its topics. Returns counted | duplicate |
        unknown_alert | unknown_subscription | not_in_audience.
        """

    async def delivery_histogram(self, alert_id: int) -> list[tuple[int, int]]:
        """(bucket ms since the alert was created, deliveries) in bucket order."""

    async def event_seconds(self, alert_id: int) -> list[tuple[int, str, int]]:
        """(second since the alert was created, shown|clicked, count)."""

    async def has_work(self, now: float) -> bool:
        """Read-only: is anything plannable, claimable or due? (cheap idle polling)"""

    async def pending_work(self) -> dict[str, int]: ...

    async def next_due_time(self) -> float | None: ...


class Store(ReaderStore, AlertStore, Protocol):
    """Everything the service needs from a database: SQLite and PostgreSQL implement it."""


def migration_files(dialect: str) -> list[tuple[int, str, str]]:
    """(version, name, sql) for each migration of a dialect, in order."""
    found = []
    for path in sorted((MIGRATIONS_DIR / dialect).glob("*.sql")):
        version = int(path.name.split("_", 1)[0])
        found.append((version, path.stem, path.read_text(encoding="utf-8")))
    return found
