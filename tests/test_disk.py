"""Files and errors on disk: secrets owner-only from the first byte, nothing that looks
complete after a failure, and a database that refuses writes says why (API, /readyz, CLI)."""

from __future__ import annotations

import json
import os
import resource
import sqlite3
import stat
import sys
from pathlib import Path

import pytest

from pushdesk.backup import backup_sqlite
from pushdesk.limits import MAX_BODY_TEXT, MAX_TITLE
from pushdesk.secure_files import written_whole
from pushdesk.store import open_store
from pushdesk.store.sqlite import SQLiteStore
from tests.support.cli_runner import env_for
from tests.support.helpers import BrowserKeys

STORY = "https://news.example/story"
SQLITE_ONLY = pytest.mark.parametrize("database", ["sqlite"], indirect=True)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_the_database_is_owner_only_even_in_a_directory_that_existed(tmp_path):
    data = tmp_path / "shared-dir"
    data.mkdir(mode=0o755)
    old = os.umask(0o022)
    try:
        store = await SQLiteStore.open(data / "pushdesk.db")
        await store.migrate()
        await store.close()
    finally:
        os.umask(old)
    assert mode(data / "pushdesk.db") == 0o600
    assert all(mode(p) == 0o600 for p in data.glob("pushdesk.db*"))


def test_a_file_written_whole_is_owner_only_and_left_alone_on_failure(tmp_path):
    target = tmp_path / "export.jsonl"
    target.write_text("old\n")
    target.chmod(0o644)
    with pytest.raises(RuntimeError), written_whole(target) as out:
        out.write("half")
        raise RuntimeError("disk trouble")
    assert target.read_text() == "old\n"  # untouched; no partial file beside it
    assert [p.name for p in tmp_path.iterdir()] == ["export.jsonl"]
    with written_whole(target) as out:
        assert mode(Path(out.name)) == 0o600  # from the first byte
        out.write("new\n")
    assert target.read_text() == "new\n" and mode(target) == 0o600


@SQLITE_ONLY
async def test_a_backup_that_fails_half_way_leaves_nothing_that_looks_complete(settings, tmp_path):
    store = await open_store(settings.database)
    await store.close()
    keys = tmp_path / "keys-with-trouble"
    keys.mkdir()
    (keys / "a.pem").write_bytes(b"key")
    (keys / "b.pem").mkdir()  # cannot be read as a file: fails after the database copy
    target = tmp_path / "backups" / "pushdesk.db"
    source = Path(settings.database.removeprefix("sqlite:///"))
    with pytest.raises(IsADirectoryError):
        backup_sqlite(source, keys, target)
    assert list((tmp_path / "backups").iterdir()) == []
    (keys / "b.pem").rmdir()
    assert backup_sqlite(source, keys, target) == 1
    assert mode(target) == 0o600 and mode(Path(f"{target}.keys")) == 0o700
    assert mode(Path(f"{target}.keys") / "a.pem") == 0o600


async def test_export_is_owner_only(settings, tmp_path):
    from tests.support.cli_runner import pushdesk

    assert (await pushdesk(settings, "keys", "generate")).code == 0
    source = tmp_path / "in.jsonl"
    source.write_text(json.dumps(BrowserKeys.generate().subscription_json(
        "https://fcm.googleapis.com/fcm/send/e1")) + "\n")  # fmt: skip
    assert (await pushdesk(settings, "subscriptions", "import", str(source))).code == 0
    out = tmp_path / "out.jsonl"
    run = await pushdesk(settings, "subscriptions", "export", str(out))
    assert run.code == 0 and mode(out) == 0o600 and "auth" in out.read_text()


@SQLITE_ONLY
@pytest.mark.parametrize(
    ("pragma", "status", "code"),
    [
        ("max_page_count", 507, "disk_full"),  # SQLite's own "database or disk is full"
        ("query_only", 503, "read_only"),  # "attempt to write a readonly database"
    ],
)
async def test_a_database_that_refuses_writes_says_why(desk, pragma, status, code):
    """Not "busy, try again in a second": the editor hears what is wrong, and /readyz fails."""
    db = desk.store.db
    if pragma == "max_page_count":
        pages = (await (await db.execute("PRAGMA page_count")).fetchone())[0]
        await db.execute(f"PRAGMA max_page_count = {pages}")
    else:
        await db.execute("PRAGMA query_only = 1")
    assert (await desk.client.get("/readyz")).status == 200
    # Alerts whose rows need pages the database may not have (a full disk).
    for n in range(20):
        resp = await desk.push(
            {"title": "t" * MAX_TITLE, "body": "b" * MAX_BODY_TEXT, "url": f"{STORY}/{n}"}
        )
        if resp.status != 202:
            break
    assert resp.status == status
    assert (await resp.json())["error"]["code"] == code
    ready = await desk.client.get("/readyz")
    body = await ready.json()
    assert ready.status == 503 and body["checks"]["storage"] is False and body["storage"] == code


@SQLITE_ONLY
async def test_a_cli_command_on_a_full_disk_ends_with_one_line(settings, tmp_path):
    """The file-size limit stands in for a full disk: the write fails inside SQLite."""
    import asyncio

    from tests.support.cli_runner import pushdesk

    assert (await pushdesk(settings, "keys", "generate")).code == 0
    source = tmp_path / "many.jsonl"
    source.write_text(
        "".join(
            json.dumps(
                BrowserKeys.generate().subscription_json(
                    f"https://fcm.googleapis.com/fcm/send/{n}-" + "x" * 150
                )
            )
            + "\n"
            for n in range(3000)
        )
    )
    database = Path(settings.database.removeprefix("sqlite:///"))
    limit = database.stat().st_size + 64 * 1024

    def small_disk() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "pushdesk", "subscriptions", "import", str(source),
        env=env_for(settings), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        preexec_fn=small_disk,
    )  # fmt: skip
    _, err = await asyncio.wait_for(proc.communicate(), 120)
    lines = err.decode().strip().splitlines()
    assert proc.returncode != 0 and "Traceback" not in err.decode()
    assert len(lines) == 1 and lines[0].startswith("pushdesk: "), lines
    assert sqlite3.connect(database).execute("PRAGMA integrity_check").fetchone() == ("ok",)
