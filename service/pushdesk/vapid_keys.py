"""The service's VAPID keys: private keys as files in `keys/`, their ids and status in the store.

The store says which key new readers get (active), which still sign for older readers
(retiring) and which are done (retired). A key the store knows but whose file is gone is a hard
error at start: generating a replacement silently would cut off every reader made with it.
"""

from __future__ import annotations

import time
from pathlib import Path

from .store import Store
from .webpush.vapid import (
    KeyRing,
    VapidKeyError,
    VapidSigner,
    generate_key_file,
    key_id_for,
    load_key_file,
    public_key_b64,
)


async def create_key(store: Store, keys_dir: Path) -> tuple[str, str]:
    """Generate a key file and make it the active key; earlier active keys become retiring."""
    key_id, public = generate_key_file(keys_dir)
    await store.add_vapid_key(key_id, public, "active")
    return key_id, public


async def refresh_keyring(keyring: KeyRing, store: Store, keys_dir: Path, subject: str) -> bool:
    """Pick up keys rotated or retired by another process; True when anything changed.

    Cheap when nothing changed (one small query), so callers may do it often.
    """
    records = await store.list_vapid_keys()
    usable = {r.id for r in records if r.status != "retired"}
    active = [r.id for r in records if r.status == "active"]
    if usable == set(keyring.signers) and active and active[-1] == keyring.active_id:
        return False
    fresh = await load_keyring(store, keys_dir, subject)
    keyring.signers, keyring.active_id = fresh.signers, fresh.active_id
    return True


class KeyRingRefresher:
    """Refreshes a keyring from the store at most once per `interval` seconds."""

    def __init__(
        self, keyring: KeyRing, store: Store, keys_dir: Path, subject: str, interval: float = 1.0
    ):
        self.keyring, self.store = keyring, store
        self.keys_dir, self.subject, self.interval = keys_dir, subject, interval
        self._checked = time.monotonic()

    async def __call__(self) -> KeyRing:
        if time.monotonic() - self._checked >= self.interval:
            self._checked = time.monotonic()
            await refresh_keyring(self.keyring, self.store, self.keys_dir, self.subject)
        return self.keyring


async def load_keyring(
    store: Store, keys_dir: Path, subject: str, *, create_first: bool = False
) -> KeyRing:
    """Load every non-retired key; with `create_first`, make the first key on a new install."""
    records = await store.list_vapid_keys()
    if not records:
        await _adopt_or_create(store, keys_dir, create_first)
        records = await store.list_vapid_keys()
    signers: dict[str, VapidSigner] = {}
    problems: list[str] = []
    for record in records:
        if record.status == "retired":
            continue
        try:
            signers[record.id] = VapidSigner(record.id, load_key_file(keys_dir, record.id), subject)
        except VapidKeyError as exc:
            problems.append(str(exc))
    if problems:
        raise VapidKeyError("; ".join(problems))
    active = [r.id for r in records if r.status == "active"]
    if not active:
        raise VapidKeyError("no active VAPID key: run `pushdesk keys generate`")
    return KeyRing(signers, active[-1])


async def _adopt_or_create(store: Store, keys_dir: Path, create_first: bool) -> None:
    """A new database: register a key file already in keys/ (restored backup) or make one."""
    existing = sorted(keys_dir.glob("*.pem")) if keys_dir.is_dir() else []
    if existing:
        for path in existing:
            key = load_key_file(keys_dir, path.stem)
            public = public_key_b64(key)
            if key_id_for(public) == path.stem:
                await store.add_vapid_key(path.stem, public, "active")
        return
    if not create_first:
        raise VapidKeyError(f"no VAPID key in {keys_dir}: run `pushdesk keys generate`")
    await create_key(store, keys_dir)


# -- the rotation rules (`pushdesk keys ...`) ---------------------------------------------
async def generate_first_key(store: Store, keys_dir: Path, force: bool) -> tuple[str, str]:
    """A new active key; refused while one exists, unless `force` (readers made with the old
    one keep it until it is retired). Returns (key id, public key)."""
    active = [k for k in await store.list_vapid_keys() if k.status == "active"]
    if active and not force:
        raise VapidKeyError(
            f"an active VAPID key exists ({active[0].id}); use --force to replace it "
            "(readers made with it keep it until it is retired)"
        )
    return await create_key(store, keys_dir)


async def active_public_key(store: Store) -> str:
    """What browsers pass as `applicationServerKey`."""
    active = [k for k in await store.list_vapid_keys() if k.status == "active"]
    if not active:
        raise VapidKeyError("no VAPID key yet: run `pushdesk keys generate` or start the service")
    return active[-1].public_key


async def retire_key(store: Store, key_id: str, force: bool) -> None:
    """Stop signing with a key: never the active one, and not while readers still use it
    (they would be cut off) unless `force`."""
    keys = {k.id: k.status for k in await store.list_vapid_keys()}
    if key_id not in keys:
        raise VapidKeyError(f"no VAPID key {key_id!r} (see pushdesk keys list)")
    if keys[key_id] == "active":
        raise VapidKeyError("that is the active key: run `pushdesk keys rotate` first")
    readers = (await store.count_subscriptions_by_key()).get(key_id, 0)
    if readers and not force:
        raise VapidKeyError(
            f"{readers} readers still use key {key_id}; retiring it cuts them off "
            "(--force to do it anyway)"
        )
    await store.set_vapid_key_status(key_id, "retired")
