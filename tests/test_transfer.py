"""Import in batches written while the next is parsed: file order still decides, and a bad
line costs only itself."""

from __future__ import annotations

import json

import pytest

from pushdesk import transfer
from pushdesk.store import open_store
from tests.support.helpers import BrowserKeys


@pytest.mark.parametrize("processes", [1, 2])
async def test_batches_written_behind_the_checking_keep_file_order(
    settings, monkeypatch, processes
):
    monkeypatch.setattr(transfer, "BATCH", 4)
    monkeypatch.setattr(transfer, "YIELD_EVERY", 3)
    monkeypatch.setattr(transfer, "CHUNK", 3)  # checked three lines at a time elsewhere
    subs = [
        BrowserKeys.generate().subscription_json(f"https://fcm.googleapis.com/fcm/send/b{i}")
        for i in range(12)
    ]
    lines = [json.dumps({**sub, "topics": ["world"]}) for sub in subs]
    lines.insert(6, "{broken")  # line 7
    lines.append(json.dumps({**subs[1], "topics": ["sport"]}))  # line 14: b1 again, later wins
    lines.append('{"endpoint": ' + "[" * 5000 + "]" * 5000 + "}")  # line 15: RecursionError
    lines.append(json.dumps({**subs[2], "timezone": "\ud800"}))  # line 16: a lone surrogate
    store = await open_store(settings.database)
    try:
        await store.add_vapid_key("k", "B", "active")
        report = await transfer.import_lines(store, lines, settings, "k", processes=processes)
        assert (report.created, report.updated) == (12, 1)
        assert report.problems == [
            "line 7: not valid JSON",
            "line 15: not valid JSON",
            "line 16: holds text that is not valid Unicode (a lone surrogate)",
        ]
        by_endpoint = {s.endpoint: s for s in await store.list_subscriptions(0, 100)}
        assert len(by_endpoint) == 12
        assert by_endpoint[subs[1]["endpoint"]].topics == ["sport"]
        assert by_endpoint[subs[2]["endpoint"]].topics == ["world"]
    finally:
        await store.close()


async def test_a_large_file_is_checked_on_every_core_through_the_cli(settings, tmp_path):
    """Over 1 MB the CLI checks lines in spawned processes: the counts and the bad line's
    number are the same as when one process checks them all."""
    from tests.support.cli_runner import pushdesk

    assert (await pushdesk(settings, "keys", "generate")).code == 0
    key = BrowserKeys.generate().subscription_json("x")["keys"]
    padding = "p" * 150  # long endpoints: a large file from few distinct keys
    lines = [
        json.dumps({"endpoint": f"https://fcm.googleapis.com/fcm/send/{padding}{n}", "keys": key})
        for n in range(6000)
    ]
    lines[4321] = "{not json"
    source = tmp_path / "big.jsonl"
    source.write_text("\n".join(lines) + "\n")
    assert source.stat().st_size > 1 << 20
    run = await pushdesk(settings, "subscriptions", "import", str(source))
    assert run.code == 1, run.err
    assert "imported 5999 new and 0 known readers; 1 lines skipped" in run.out
    assert "line 4322: not valid JSON" in run.err


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
async def test_bulk_loading_gives_sqlite_a_large_cache_only_while_it_lasts(settings):
    from pushdesk.store.sqlite import BULK_CACHE_KIB, BULK_CHECKPOINT_PAGES

    store = await open_store(settings.database)

    async def pragma(name: str) -> int:
        [(value,)] = await store.db.execute_fetchall(f"PRAGMA {name}")
        return value

    try:
        before = (await pragma("cache_size"), await pragma("wal_autocheckpoint"))
        assert before == (-2000, 1000)  # SQLite's defaults
        with pytest.raises(RuntimeError, match="import failed"):
            async with store.bulk_loading():
                assert await pragma("cache_size") == -BULK_CACHE_KIB
                assert await pragma("wal_autocheckpoint") == BULK_CHECKPOINT_PAGES
                raise RuntimeError("import failed")
        assert (await pragma("cache_size"), await pragma("wal_autocheckpoint")) == before
    finally:
        await store.close()


async def test_import_pauses_the_cycle_collector_and_leaves_no_cycles(settings, monkeypatch):
    """The collector is off during an import; what the import leaves for it does not grow
    with the number of readers, so pausing it cannot pile up memory."""
    import gc

    store = await open_store(settings.database)
    seen_enabled: list[bool] = []
    real_write = transfer._write

    async def write(*args):
        seen_enabled.append(gc.isenabled())
        await real_write(*args)

    async def cycles_left_by_import(count: int, start: int) -> int:
        lines = [
            json.dumps(
                BrowserKeys.generate().subscription_json(
                    f"https://fcm.googleapis.com/fcm/send/c{n}"
                )
            )
            for n in range(start, start + count)
        ]
        gc.collect()
        report = await transfer.import_lines(store, lines, settings, "k")
        assert report.created == count and gc.isenabled()
        return gc.collect()

    try:
        await store.add_vapid_key("k", "B", "active")
        monkeypatch.setattr(transfer, "_write", write)
        small = await cycles_left_by_import(50, 0)
        large = await cycles_left_by_import(3000, 1000)
        assert seen_enabled and not any(seen_enabled)
        assert large <= small + 50, (small, large)
    finally:
        await store.close()
    with pytest.raises(RuntimeError), transfer.cycle_collector_paused():
        assert not gc.isenabled()
        raise RuntimeError("import failed")
    assert gc.isenabled()
