from __future__ import annotations

import dataclasses
import uuid
from pathlib import Path

import pytest

from pushdesk.app import create_app
from pushdesk.config import Settings
from tests.support.database import POSTGRES_URL

pytest_plugins = ["tests.support.browser"]  # the `browser` fixture


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def database(request, tmp_path: Path):
    """Each test runs on a new SQLite file and on its own new PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'data' / 'pushdesk.db'}"
        return
    import asyncpg

    schema = f"test_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(POSTGRES_URL)
    await conn.execute(f"CREATE SCHEMA {schema}")
    await conn.close()
    try:
        yield f"{POSTGRES_URL}?search_path={schema}"
    finally:  # a fresh connection: fault tests cut every connection the test had
        conn = await asyncpg.connect(POSTGRES_URL)
        await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        await conn.close()


@pytest.fixture
def settings(tmp_path: Path, database: str) -> Settings:
    return Settings(
        database=database,
        keys_dir=tmp_path / "keys",
        vapid_subject="mailto:newsdesk@example.com",
        allow_http_endpoints=True,
        site_origins=("https://news.example",),
        rate_limit=None,
    )


@pytest.fixture
def make_client(database, aiohttp_client):  # database first: it must outlive the app
    """Start the real app on loopback for the given settings."""

    async def make(settings: Settings, **changes):
        return await aiohttp_client(create_app(dataclasses.replace(settings, **changes)))

    return make


@pytest.fixture
async def client(make_client, settings):
    return await make_client(settings)


@pytest.fixture
async def push_service():
    from tests.support.fake_push import FakePushService

    service = await FakePushService().start()
    yield service
    await service.stop()


@pytest.fixture
async def other_push_service():
    """A second push-service origin, to show one origin's trouble stalls nobody else."""
    from tests.support.fake_push import FakePushService

    service = await FakePushService().start()
    yield service
    await service.stop()


@pytest.fixture
async def desk(settings, aiohttp_client):  # settings (and its database) outlive the app
    """The app with a fast embedded worker, and an editor key for it."""
    from tests.support.newsroom import Newsroom
    from tests.support.sending import fast_runtime

    client = await aiohttp_client(create_app(settings, fast_runtime()))
    return await Newsroom.open(client)


@pytest.fixture
def keyring(tmp_path: Path):
    """One VAPID key on disk, loaded as the sender uses it."""
    from pushdesk.webpush.vapid import KeyRing, VapidSigner, generate_key_file, load_key_file

    key_id, _ = generate_key_file(tmp_path)
    signer = VapidSigner(key_id, load_key_file(tmp_path, key_id), "mailto:desk@example.com")
    return KeyRing({key_id: signer}, key_id)
