"""The one interface every store implements. Callers never see SQL or a driver."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from .models import NewSubscription, Subscription, VapidKeyRecord

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


class StoreError(Exception):
    """A store-level problem worth a clear message (conflict, unavailable database)."""


class EndpointTaken(StoreError):
    """The endpoint already belongs to another subscription."""


class Store(Protocol):
    async def migrate(self) -> None:
        """Apply pending schema migrations; safe to call from several processes at once."""

    async def close(self) -> None: ...

    async def ping(self) -> bool:
        """True when the database answers."""

    # -- VAPID keys ------------------------------------------------------------------
    async def list_vapid_keys(self) -> list[VapidKeyRecord]: ...

    async def add_vapid_key(self, key_id: str, public_key: str, status: str) -> None: ...

    async def set_vapid_key_status(self, key_id: str, status: str) -> bool: ...

    async def count_subscriptions_by_key(self) -> dict[str, int]: ...

    # -- subscriptions -----------------------------------------------------------------
    async def upsert_subscription(self, new: NewSubscription) -> tuple[Subscription, bool]:
        """Insert, or update the row with the same endpoint; True when it was created.

        On update only the preference keys present in `new.preferences` change, the keys and
        the token hash are replaced.
        """

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

    async def record_outcomes(self, outcomes: list[tuple[int, str, str]]) -> None:
        """Write what push services said about subscriptions: (id, result, reason).

        `gone` deletes the subscription; `vapid_rejected` marks it so it is not sent to again
        until the browser subscribes anew; other failures are noted as its last failure.
        """

    async def count_subscriptions(self) -> int: ...

    async def topic_counts(self) -> dict[str, int]: ...


def migration_files(dialect: str) -> list[tuple[int, str, str]]:
    """(version, name, sql) for each migration of a dialect, in order."""
    found = []
    for path in sorted((MIGRATIONS_DIR / dialect).glob("*.sql")):
        version = int(path.name.split("_", 1)[0])
        found.append((version, path.stem, path.read_text(encoding="utf-8")))
    return found
