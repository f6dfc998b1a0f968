"""The browsers' API over real HTTP on loopback, against a real SQLite file."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from pushdesk.api.state import STORE
from pushdesk.webpush.encoding import b64url_decode
from tests.support.helpers import BrowserKeys

FCM = "https://fcm.googleapis.com/fcm/send/"


def body_for(endpoint: str = FCM + "reader-1", **prefs):
    return {"subscription": BrowserKeys.generate().subscription_json(endpoint), **prefs}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_vapid_public_key_is_an_uncompressed_p256_point(client):
    resp = await client.get("/api/vapid-public-key")
    assert resp.status == 200
    raw = b64url_decode((await resp.json())["publicKey"])
    assert len(raw) == 65 and raw[0] == 4


async def test_topics_catalogue_marks_breaking_as_default(client):
    topics = (await (await client.get("/api/topics")).json())["topics"]
    ids = [t["id"] for t in topics]
    assert ids[:2] == ["breaking", "world"] and "technology" in ids
    assert [t["id"] for t in topics if t["default"]] == ["breaking"]


async def test_subscribe_creates_with_defaults_then_upserts_by_endpoint(client):
    browser = BrowserKeys.generate()
    resp = await client.post(
        "/api/subscriptions", json={"subscription": browser.subscription_json(FCM + "r1")}
    )
    assert resp.status == 201
    first = await resp.json()
    assert first["topics"] == ["breaking"] and first["timezone"] == "UTC"
    assert first["quietHours"] is None and first["maxPerDay"] is None and first["token"]

    # The same browser (same endpoint and keys) subscribing again.
    again = {
        "subscription": browser.subscription_json(FCM + "r1"),
        "topics": ["world", "sport"],
        "maxPerDay": 3,
    }
    resp = await client.post("/api/subscriptions", json=again)
    assert resp.status == 200
    second = await resp.json()
    assert second["id"] == first["id"] and second["token"] != first["token"]
    assert second["topics"] == ["sport", "world"] and second["maxPerDay"] == 3
    # The fresh token replaces the old one.
    old = await client.get(f"/api/subscriptions/{first['id']}", headers=bearer(first["token"]))
    assert old.status == 404
    new = await client.get(f"/api/subscriptions/{first['id']}", headers=bearer(second["token"]))
    assert new.status == 200 and (await new.json())["topics"] == ["sport", "world"]


async def test_preferences_round_trip_get_patch_delete(client):
    created = await (
        await client.post(
            "/api/subscriptions",
            json=body_for(
                topics=["breaking", "politics"],
                timezone="America/New_York",
                quietHours={"start": "22:30", "end": "07:00"},
                maxPerDay=5,
                language="en-US",
            ),
        )
    ).json()
    sub_id, auth = created["id"], bearer(created["token"])
    got = await (await client.get(f"/api/subscriptions/{sub_id}", headers=auth)).json()
    assert got == {
        "id": sub_id,
        "topics": ["breaking", "politics"],
        "timezone": "America/New_York",
        "quietHours": {"start": "22:30", "end": "07:00"},
        "maxPerDay": 5,
        "language": "en-US",
    }
    resp = await client.patch(
        f"/api/subscriptions/{sub_id}", json={"topics": ["sport"], "quietHours": None}, headers=auth
    )
    assert resp.status == 200
    patched = await resp.json()
    assert patched["topics"] == ["sport"] and patched["quietHours"] is None
    assert patched["maxPerDay"] == 5 and patched["timezone"] == "America/New_York"

    assert (await client.delete(f"/api/subscriptions/{sub_id}", headers=auth)).status == 204
    assert (await client.get(f"/api/subscriptions/{sub_id}", headers=auth)).status == 404


async def test_token_checks_do_not_reveal_which_ids_exist(client):
    created = await (await client.post("/api/subscriptions", json=body_for())).json()
    path = f"/api/subscriptions/{created['id']}"
    missing = await client.get(path)
    assert missing.status == 401 and (await missing.json())["error"]["code"] == "unauthorized"
    assert (await client.get(path, headers={"Authorization": "Basic abc"})).status == 401
    wrong = await client.get(path, headers=bearer("not-the-token"))
    unknown = await client.get("/api/subscriptions/nosuchid", headers=bearer(created["token"]))
    assert wrong.status == unknown.status == 404
    assert await wrong.json() == await unknown.json()
    for method in ("patch", "delete"):
        resp = await getattr(client, method)(path, json={}, headers=bearer("nope"))
        assert resp.status == 404
    # Nothing changed or was deleted by the failed attempts.
    assert (await client.get(path, headers=bearer(created["token"]))).status == 200


KEYS = BrowserKeys.generate().subscription_json(FCM + "x")["keys"]
OFF_CURVE = (
    "BAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAE"
)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "subscription"),
        ({"subscription": "x"}, "subscription"),
        ({"subscription": {"endpoint": FCM + "a"}}, "subscription.keys"),
        (
            {"subscription": {"endpoint": "ftp://fcm.googleapis.com/x", "keys": KEYS}},
            "subscription.endpoint",
        ),
        (
            {"subscription": {"endpoint": "https://evil.example/push", "keys": KEYS}},
            "subscription.endpoint",
        ),
        (
            {"subscription": {"endpoint": "https://10.0.0.1/push", "keys": KEYS}},
            "subscription.endpoint",
        ),
        (
            {"subscription": {"endpoint": "https://u:p@fcm.googleapis.com/x", "keys": KEYS}},
            "subscription.endpoint",
        ),
        ({"subscription": {"endpoint": FCM + "a" * 1100, "keys": KEYS}}, "subscription.endpoint"),
        # Push services listen on 443 at well-formed names on the allow-list.
        *(
            ({"subscription": {"endpoint": endpoint, "keys": KEYS}}, "subscription.endpoint")
            for endpoint in (
                "https://fcm.googleapis.com:22/fcm/send/x",
                "https://fcm.googleapis.com:0443/fcm/send/x",
                "https://updates.push.services.mozilla.com:8443/wpush/v2/x",
                "https://a..push.apple.com/x",
                "https://x%2ey.push.apple.com/x",
                "https://-x.push.apple.com/x",
                "https://fcm.googleapis.com./fcm/send/x",
            )
        ),
        # Audiences py_vapid refuses: the reader could never be signed for.
        (
            {"subscription": {"endpoint": "https://fcm.googleapis.com:/fcm/send/x", "keys": KEYS}},
            "subscription.endpoint",
        ),
        (
            {"subscription": {"endpoint": "http://[::1]:8080/push/x", "keys": KEYS}},
            "subscription.endpoint",
        ),
        ({"subscription": {"endpoint": 5, "keys": KEYS}}, "subscription.endpoint"),
        ({"subscription": {"endpoint": FCM + "a\r\nX: 1", "keys": KEYS}}, "subscription.endpoint"),
        ({"subscription": {"endpoint": FCM + "a b", "keys": KEYS}}, "subscription.endpoint"),
        ({"subscription": {"endpoint": FCM + "\u00e9", "keys": KEYS}}, "subscription.endpoint"),
        (
            {"subscription": {"endpoint": FCM + "a", "keys": {**KEYS, "p256dh": "abc"}}},
            "subscription.keys.p256dh",
        ),
        (
            {"subscription": {"endpoint": FCM + "a", "keys": {**KEYS, "p256dh": OFF_CURVE}}},
            "subscription.keys.p256dh",
        ),
        (
            {"subscription": {"endpoint": FCM + "a", "keys": {**KEYS, "p256dh": "+/+/"}}},
            "subscription.keys.p256dh",
        ),
        (
            {"subscription": {"endpoint": FCM + "a", "keys": {**KEYS, "auth": "AAAA"}}},
            "subscription.keys.auth",
        ),
        (
            {"subscription": {"endpoint": FCM + "a", "keys": {"p256dh": KEYS["p256dh"]}}},
            "subscription.keys.auth",
        ),
        (
            {"subscription": {"endpoint": FCM + "a", "keys": KEYS, "expirationTime": "soon"}},
            "subscription.expirationTime",
        ),
        ({"subscription": {"endpoint": FCM + "a", "keys": KEYS, "extra": 1}}, "subscription.extra"),
    ],
)
async def test_bad_subscriptions_are_refused_with_their_field(client, body, field):
    resp = await client.post("/api/subscriptions", json=body)
    assert resp.status == 400
    error = (await resp.json())["error"]
    assert error["code"] == "invalid" and error["field"] == field and error["message"]
    assert await client.app[STORE].count_subscriptions() == 0


@pytest.mark.parametrize(
    ("prefs", "field"),
    [
        ({"topics": ["breaking", "gardening"]}, "topics"),
        ({"topics": "breaking"}, "topics"),
        ({"topics": [1]}, "topics"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"timezone": "../../etc/passwd"}, "timezone"),
        ({"timezone": 3}, "timezone"),
        ({"quietHours": {"start": "25:00", "end": "07:00"}}, "quietHours.start"),
        ({"quietHours": {"start": "22:00"}}, "quietHours.end"),
        ({"quietHours": {"start": "7:00", "end": "08:00"}}, "quietHours.start"),
        ({"quietHours": {"start": "08:00", "end": "08:00"}}, "quietHours"),
        ({"quietHours": "22-07"}, "quietHours"),
        ({"maxPerDay": 0}, "maxPerDay"),
        ({"maxPerDay": 51}, "maxPerDay"),
        ({"maxPerDay": 2.5}, "maxPerDay"),
        ({"maxPerDay": True}, "maxPerDay"),
        ({"language": "english please"}, "language"),
        ({"colour": "blue"}, "colour"),
    ],
)
async def test_bad_preferences_are_refused_on_create_and_patch(client, prefs, field):
    resp = await client.post("/api/subscriptions", json=body_for(**prefs))
    assert resp.status == 400 and (await resp.json())["error"]["field"] == field
    created = await (await client.post("/api/subscriptions", json=body_for())).json()
    resp = await client.patch(
        f"/api/subscriptions/{created['id']}", json=prefs, headers=bearer(created["token"])
    )
    assert resp.status == 400 and (await resp.json())["error"]["field"] == field
    after = await client.get(
        f"/api/subscriptions/{created['id']}", headers=bearer(created["token"])
    )
    assert (await after.json())["topics"] == ["breaking"]


async def test_body_type_size_and_syntax_errors(client):
    resp = await client.post("/api/subscriptions", data="x", headers={"Content-Type": "text/plain"})
    assert resp.status == 415 and (await resp.json())["error"]["code"] == "unsupported_media_type"
    resp = await client.post(
        "/api/subscriptions", data="{not json", headers={"Content-Type": "application/json"}
    )
    assert resp.status == 400 and (await resp.json())["error"]["code"] == "invalid_json"
    big = body_for(language="en", padding="x" * 20_000)
    resp = await client.post("/api/subscriptions", json=big)
    assert resp.status == 413 and (await resp.json())["error"]["code"] == "too_large"
    huge = await client.post(
        "/api/subscriptions", data=b"x" * 200_000, headers={"Content-Type": "application/json"}
    )
    assert huge.status == 413
    assert (await client.get("/api/nothing-here")).status == 404
    assert (await (await client.get("/api/nothing-here")).json())["error"]["code"] == "not_found"


async def test_loopback_endpoints_only_when_allowed(client, make_client, settings):
    local = body_for("http://127.0.0.1:9999/push/abc")
    assert (await client.post("/api/subscriptions", json=local)).status == 201
    strict = await make_client(settings, allow_http_endpoints=False)
    resp = await strict.post("/api/subscriptions", json=body_for("http://127.0.0.1:9999/push/b"))
    assert resp.status == 400
    remote_http = body_for("http://fcm.googleapis.com/fcm/send/x")
    assert (await client.post("/api/subscriptions", json=remote_http)).status == 400


@pytest.mark.parametrize(
    "endpoint",
    [
        "https://fcm.googleapis.com/fcm/send/abc:def",
        "https://updates.push.services.mozilla.com/wpush/v2/gAAAA",
        "https://web.push.apple.com/QGuQ",
        "https://wns2-par02p.notify.windows.com/w/?token=BQYAAAB",
    ],
)
async def test_real_push_services_are_accepted(client, endpoint):
    assert (await client.post("/api/subscriptions", json=body_for(endpoint))).status == 201


async def test_renewed_subscription_keeps_preferences(client):
    created = await (
        await client.post("/api/subscriptions", json=body_for(topics=["world"], maxPerDay=2))
    ).json()
    renewed = BrowserKeys.generate().subscription_json(FCM + "renewed")
    resp = await client.patch(
        f"/api/subscriptions/{created['id']}",
        json={"subscription": renewed},
        headers=bearer(created["token"]),
    )
    assert resp.status == 200
    assert (await resp.json())["topics"] == ["world"]
    # The new endpoint is now this reader's: subscribing with it finds the same id.
    again = await (await client.post("/api/subscriptions", json={"subscription": renewed})).json()
    assert again["id"] == created["id"] and again["maxPerDay"] == 2

    other = await (await client.post("/api/subscriptions", json=body_for(FCM + "other"))).json()
    clash = await client.patch(
        f"/api/subscriptions/{other['id']}",
        json={"subscription": renewed},
        headers=bearer(other["token"]),
    )
    assert clash.status == 409


async def test_subscriptions_survive_a_restart(make_client, settings):
    first = await make_client(settings)
    created = await (await first.post("/api/subscriptions", json=body_for(topics=["sport"]))).json()
    key = (await (await first.get("/api/vapid-public-key")).json())["publicKey"]
    await first.close()
    second = await make_client(settings)
    resp = await second.get(f"/api/subscriptions/{created['id']}", headers=bearer(created["token"]))
    assert resp.status == 200 and (await resp.json())["topics"] == ["sport"]
    # Same VAPID key after restart: the browser's applicationServerKey stays valid.
    assert (await (await second.get("/api/vapid-public-key")).json())["publicKey"] == key


async def test_cors_only_for_configured_site_origins(client):
    ok = await client.options(
        "/api/subscriptions",
        headers={"Origin": "https://news.example", "Access-Control-Request-Method": "POST"},
    )
    assert ok.status == 204
    assert ok.headers["Access-Control-Allow-Origin"] == "https://news.example"
    assert "Authorization" in ok.headers["Access-Control-Allow-Headers"]
    bad = await client.options(
        "/api/subscriptions",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert bad.status == 403 and "Access-Control-Allow-Origin" not in bad.headers
    simple = await client.get("/api/topics", headers={"Origin": "https://news.example"})
    assert simple.headers["Access-Control-Allow-Origin"] == "https://news.example"


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
async def test_a_new_data_directory_is_private(client, settings):
    data_dir = Path(settings.database.removeprefix("sqlite:///")).parent
    assert data_dir.stat().st_mode & 0o777 == 0o700


def test_public_ids_never_read_as_command_line_options():
    from pushdesk.tokens import new_public_id

    ids = {new_public_id() for _ in range(5000)}
    assert len(ids) == 5000
    assert all(len(i) == 22 and i.isalnum() for i in ids)
    # every random position draws from the whole alphabet (62 letters, 5000 draws each)
    assert all(len({i[position] for i in ids}) == 62 for position in range(6, 22))


def test_public_ids_sort_by_the_second_they_were_made():
    from pushdesk.tokens import new_public_ids

    seconds = [0, 61, 62, 3843, 1_700_000_000, 1_700_000_001, 1_800_000_000, 62**6 - 1]
    ids = [new_public_ids(3, now=second) for second in seconds]
    flat = [i for group in ids for i in group]
    assert [i[:6] for i in flat] == sorted(i[:6] for i in flat)
    assert all(len({i[:6] for i in group}) == 1 for group in ids)
    assert ids[0][0].startswith("000000") and ids[-1][0].startswith("zzzzzz")
    assert all(len(i) == 22 and i.isalnum() for i in flat)


def test_public_ids_made_in_bulk_are_uniform_letters():
    from collections import Counter

    from pushdesk.tokens import ID_ALPHABET, new_public_ids

    ids = new_public_ids(5000)
    assert len(set(ids)) == 5000 and all(len(i) == 22 and i.isalnum() for i in ids)
    counts = Counter("".join(i[6:] for i in ids))
    assert set(counts) == set(ID_ALPHABET)
    # Chi-squared over 62 letters (61 degrees of freedom: mean 61, sd 11). Taking bytes mod 62
    # without dropping 248-255 would favour 8 letters by 25% and score in the thousands.
    expected = 5000 * 16 / 62
    chi2 = sum((counts[letter] - expected) ** 2 / expected for letter in ID_ALPHABET)
    assert chi2 < 150
    assert new_public_ids(0) == []


async def test_an_endpoint_has_one_spelling(client):
    """`:443` and upper case are the same push service: stored once, in one spelling, so a
    reader has one endpoint and one VAPID audience."""
    keys = BrowserKeys.generate()
    given = "HTTPS://FCM.googleapis.com:443/fcm/send/AbC"
    resp = await client.post(
        "/api/subscriptions", json={"subscription": keys.subscription_json(given)}
    )
    assert resp.status == 201
    first = await resp.json()
    again = keys.subscription_json("https://fcm.googleapis.com/fcm/send/AbC")
    resp = await client.post("/api/subscriptions", json={"subscription": again})
    assert resp.status == 200 and (await resp.json())["id"] == first["id"]
    stored = await client.app[STORE].get_subscription(first["id"])
    assert stored is not None and stored.endpoint == "https://fcm.googleapis.com/fcm/send/AbC"


async def test_a_known_endpoint_with_other_keys_is_no_takeover(client):
    """Whoever knows a reader's endpoint must not get their id, preferences or alerts by
    subscribing it with their own keys; the reader's own browser (same keys) comes back as
    before, and the reader's token may change the keys."""
    victim = BrowserKeys.generate()
    endpoint = FCM + "victim"
    body = {"subscription": victim.subscription_json(endpoint), "topics": ["world"]}
    resp = await client.post("/api/subscriptions", json=body)
    assert resp.status == 201
    reader = await resp.json()

    attacker = BrowserKeys.generate()
    resp = await client.post(
        "/api/subscriptions", json={"subscription": attacker.subscription_json(endpoint)}
    )
    assert resp.status == 409
    answer = await resp.json()
    assert answer["error"]["code"] == "conflict" and reader["id"] not in json.dumps(answer)
    stored = await client.app[STORE].get_subscription(reader["id"])
    assert stored is not None and stored.p256dh == victim.p256dh and stored.topics == ["world"]
    own = {"Authorization": f"Bearer {reader['token']}"}
    assert (await client.get(f"/api/subscriptions/{reader['id']}", headers=own)).status == 200

    resp = await client.post("/api/subscriptions", json=body)  # the same browser again
    assert resp.status == 200 and (await resp.json())["id"] == reader["id"]
    token = (await resp.json())["token"]

    renewed = BrowserKeys.generate()  # the reader's token may change the keys
    resp = await client.post(
        "/api/subscriptions",
        json={"subscription": renewed.subscription_json(endpoint)},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert resp.status == 200 and (await resp.json())["id"] == reader["id"]
    stored = await client.app[STORE].get_subscription(reader["id"])
    assert stored is not None and stored.p256dh == renewed.p256dh


async def raw_request(client, head: bytes, body: bytes = b"") -> tuple[int, dict]:
    """Bytes on the wire as they are (aiohttp's client would re-encode a header)."""
    reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
    writer.write(head + b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body)
    answer = await reader.read()
    writer.close()
    status = int(answer.split(b" ", 2)[1])
    return status, json.loads(answer.split(b"\r\n\r\n", 1)[1] or b"{}")


async def test_a_header_that_is_not_utf8_is_a_401_or_404_not_a_500(client):
    keys = BrowserKeys.generate()
    resp = await client.post(
        "/api/subscriptions", json={"subscription": keys.subscription_json(FCM + "u")}
    )
    reader = await resp.json()
    auth = b"Authorization: Bearer \xff\xfe\x80token\r\n"
    for request in (
        b"GET /api/subscriptions/%s HTTP/1.1\r\nHost: x\r\n" % reader["id"].encode(),
        b"GET /api/alerts HTTP/1.1\r\nHost: x\r\n",
        b"POST /api/alerts HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n",
    ):
        status, answer = await raw_request(client, request + auth, b"{}")
        assert status in (401, 404), (request, status)
        assert answer["error"]["code"]
