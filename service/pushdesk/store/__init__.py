"""Storage: one `Store` interface with SQLite (default) and PostgreSQL behind it."""

from __future__ import annotations

from .base import (
    TRANSIENT_ERRORS,
    EndpointTaken,
    StorageProblem,
    Store,
    StoreError,
    storage_problem,
)
from .models import NewSubscription, QuietHours, Subscription, VapidKeyRecord

__all__ = [
    "TRANSIENT_ERRORS",
    "EndpointTaken",
    "NewSubscription",
    "QuietHours",
    "StorageProblem",
    "Store",
    "StoreError",
    "Subscription",
    "VapidKeyRecord",
    "open_store",
    "storage_problem",
]


async def open_store(url: str, *, migrate: bool = True) -> Store:
    """Open the store a database URL names, applying migrations unless told not to."""
    store: Store
    if url.startswith("sqlite:///"):
        from .sqlite import SQLiteStore

        store = await SQLiteStore.open(url.removeprefix("sqlite:///"))
    elif url.startswith(("postgresql://", "postgres://")):
        try:
            from .postgres import PostgresStore
        except ImportError as exc:  # asyncpg is the `postgres` extra
            raise StoreError("PostgreSQL needs asyncpg: pip install 'pushdesk[postgres]'") from exc
        store = await PostgresStore.open(url)
    else:
        raise StoreError(f"unsupported database URL {url!r}")
    if migrate:
        await store.migrate()
    return store
