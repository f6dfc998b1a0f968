"""Import in batches written while the next is parsed: file order still decides, and a bad
line costs only itself."""

from __future__ import annotations

import json

from service import transfer
from service.store import open_store
from tests.helpers import BrowserKeys


async def test_batches_written_behind_the_parsing_keep_file_order(settings, monkeypatch):
    monkeypatch.setattr(transfer, "BATCH", 4)
    monkeypatch.setattr(transfer, "YIELD_EVERY", 3)
    subs = [
        BrowserKeys.generate().subscription_json(f"https://fcm.googleapis.com/fcm/send/b{i}")
        for i in range(12)
    ]
    lines = [json.dumps({**sub, "topics": ["world"]}) for sub in subs]
    lines.insert(6, "{broken")  # line 7
    lines.append(json.dumps({**subs[1], "topics": ["sport"]}))  # line 14: b1 again, later wins
    store = await open_store(settings.database)
    try:
        await store.add_vapid_key("k", "B", "active")
        report = await transfer.import_lines(store, lines, settings, "k")
        assert (report.created, report.updated) == (12, 1)
        assert report.problems == ["line 7: not valid JSON"]
        by_endpoint = {s.endpoint: s for s in await store.list_subscriptions(0, 100)}
        assert len(by_endpoint) == 12
        assert by_endpoint[subs[1]["endpoint"]].topics == ["sport"]
        assert by_endpoint[subs[2]["endpoint"]].topics == ["world"]
    finally:
        await store.close()
