"""The `pushdesk` command, run as a real process against the test's SQLite file."""

from __future__ import annotations

import json

import pytest

from pushdesk.store import open_store
from tests.support.cli_runner import free_port, pushdesk


async def subscribe(client, push_service, **prefs):
    endpoint, keys = push_service.subscribe()
    body = {"subscription": keys.subscription_json(endpoint), **prefs}
    created = await (await client.post("/api/subscriptions", json=body)).json()
    return created["id"], endpoint


async def test_push_delivers_one_message_through_the_engine(client, settings, push_service):
    sub_id, endpoint = await subscribe(client, push_service)
    run = await pushdesk(
        settings,
        "push",
        sub_id,
        "--title",
        "Test alert",
        "--url",
        "https://news.example/t",
        "--body",
        "Hello reader",
    )
    assert run.code == 0, run.err
    assert run.out.startswith("delivered: HTTP 201 from http://127.0.0.1:")
    assert push_service.messages(endpoint) == [
        {"title": "Test alert", "body": "Hello reader", "url": "https://news.example/t"}
    ]


async def test_push_to_a_gone_reader_removes_them(client, settings, push_service):
    sub_id, endpoint = await subscribe(client, push_service)
    push_service.unsubscribe(endpoint)
    run = await pushdesk(settings, "push", sub_id, "--title", "T", "--url", "https://n.example/")
    assert run.code == 1
    assert run.out.startswith("gone: HTTP 410") and "removed" in run.out
    store = await open_store(settings.database)
    try:
        assert await store.get_subscription(sub_id) is None
    finally:
        await store.close()


async def test_push_retries_a_throttled_service_and_reports_rejections(
    client, settings, push_service
):
    sub_id, endpoint = await subscribe(client, push_service)
    push_service.script(endpoint, (429, {"Retry-After": "1"}))
    run = await pushdesk(settings, "push", sub_id, "--title", "T", "--url", "https://n.example/")
    assert run.code == 0 and "after 2 attempts" in run.out

    push_service.script(endpoint, (403, {}))
    run = await pushdesk(settings, "push", sub_id, "--title", "T", "--url", "https://n.example/")
    assert run.code == 1 and run.out.startswith("vapid_rejected: HTTP 403")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["push", "nosuch", "--title", "T", "--url", "https://n.example/"], "no subscription"),
        (["push", "x", "--title", "T", "--url", "http://n.example/"], "--url: must be"),
        (["push", "x", "--title", " ", "--url", "https://n.example/"], "--title: must be"),
        (["push", "x", "--title", "T", "--url", "https://n.example/", "--ttl", "-5"], "ttl"),
        # One limit for alerts, whichever way they are sent: a day, as the API says.
        (["push", "x", "--title", "T", "--url", "https://n/", "--ttl", "86401"], "0-86400"),
        (["send", "--title", "T", "--url", "https://n/", "--ttl", "2419200"], "0-86400"),
        (["push", "x", "--title", "T", "--url", "https://n/", "--ttl", "²"], "invalid ttl"),
        (["push", "x", "--title", "T"], "required"),
        (["push", "x", "--title", "T", "--url", "https://n/", "--urgency", "now"], "urgency"),
        (["frobnicate"], "invalid choice"),
        (["worker", "--concurrency", "0"], "invalid number"),
        (["serve", "--workers", "many"], "invalid number of workers"),
        (["subscriptions", "export", "/nonexistent-dir/readers.jsonl"], "No such file"),
        (["bench", "--subscribers", "-3"], "invalid count"),
        (["bench", "--latency", "nan"], "invalid latency"),
        (["bench", "--latency", "-20"], "invalid latency"),
        (["serve", "--port", "http"], "invalid port"),
    ],
)
async def test_bad_arguments_give_one_line_and_a_non_zero_exit(client, settings, args, message):
    run = await pushdesk(settings, *args)
    assert run.code != 0
    lines = run.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("pushdesk: ") and message in lines[0]
    assert "Traceback" not in run.err


async def test_config_problems_are_all_reported(settings):
    run = await pushdesk(
        settings,
        "keys",
        "show",
        PUSHDESK_PORT="eighty",
        PUSHDESK_VAPID_SUBJECT="mailto: <desk@example.com>",
        PUSHDESK_RATE_LIMIT="lots",
        PUSHDESK_DATABASE="mysql://x",
        PUSHDESK_ORIGIN_CONNECTIONS="0",
    )
    assert run.code == 2
    lines = run.err.strip().splitlines()
    assert len(lines) == 5 and all(line.startswith("pushdesk: config: ") for line in lines)
    assert any("PUSHDESK_PORT" in line for line in lines)
    assert any("PUSHDESK_VAPID_SUBJECT" in line for line in lines)
    assert any("PUSHDESK_ORIGIN_CONNECTIONS" in line for line in lines)


async def test_config_file_is_read_and_environment_wins(settings, tmp_path):
    config = tmp_path / "pushdesk.toml"
    config.write_text('vapid_subject = "https://news.example/contact"\nnonsense = 1\n')
    run = await pushdesk(settings, "--config", str(config), "keys", "show")
    assert run.code == 2 and "unknown setting 'nonsense'" in run.err
    config.write_text('log_level = "debug"\n')
    run = await pushdesk(settings, "--config", str(config), "keys", "generate")
    assert run.code == 0
    missing = await pushdesk(settings, "--config", str(tmp_path / "nope.toml"), "keys", "show")
    assert missing.code == 2 and "does not exist" in missing.err


async def test_keys_generate_show_and_replace(settings):
    shown = await pushdesk(settings, "keys", "show")
    assert shown.code == 1 and "no VAPID key yet" in shown.err
    made = await pushdesk(settings, "keys", "generate")
    assert made.code == 0
    key_id, public = made.out.split()
    assert (settings.keys_dir / f"{key_id}.pem").stat().st_mode & 0o777 == 0o600
    assert (await pushdesk(settings, "keys", "show")).out.strip() == public
    again = await pushdesk(settings, "keys", "generate")
    assert again.code == 1 and "--force" in again.err
    forced = await pushdesk(settings, "keys", "generate", "--force")
    assert forced.code == 0 and forced.out.split()[1] != public
    assert (await pushdesk(settings, "keys", "show")).out.strip() == forced.out.split()[1]
    store = await open_store(settings.database)
    try:
        statuses = {k.id: k.status for k in await store.list_vapid_keys()}
    finally:
        await store.close()
    assert statuses == {key_id: "retiring", forced.out.split()[0]: "active"}


async def test_a_key_file_readable_by_others_is_refused_at_start(client, settings, push_service):
    sub_id, _ = await subscribe(client, push_service)
    [key_file] = settings.keys_dir.glob("*.pem")
    key_file.chmod(0o644)
    run = await pushdesk(settings, "push", sub_id, "--title", "T", "--url", "https://n.example/")
    assert run.code == 1 and "readable by others" in run.err and "chmod 600" in run.err
    serve = await pushdesk(settings, "serve", "--port", str(free_port()))
    assert serve.code == 1 and "readable by others" in serve.err
    assert "Traceback" not in serve.err


async def test_editors_add_list_revoke(settings):
    added = await pushdesk(settings, "editors", "add", "night-desk")
    assert added.code == 0
    key = added.out.strip().splitlines()[-1]
    assert len(key) >= 40 and " " not in key
    dup = await pushdesk(settings, "editors", "add", "night-desk")
    assert dup.code == 1 and "exists already" in dup.err
    bad = await pushdesk(settings, "editors", "add", "no spaces please")
    assert bad.code == 1 and "editor names" in bad.err
    listed = await pushdesk(settings, "editors", "list")
    assert listed.out.startswith("night-desk\t") and "active" in listed.out
    assert key not in listed.out
    assert (await pushdesk(settings, "editors", "revoke", "night-desk")).code == 0
    assert "revoked" in (await pushdesk(settings, "editors", "list")).out
    again = await pushdesk(settings, "editors", "revoke", "night-desk")
    assert again.code == 1 and "no active editor" in again.err


async def test_subscriptions_import_reports_bad_lines_and_export_round_trips(settings, tmp_path):
    from tests.support.helpers import BrowserKeys

    assert (await pushdesk(settings, "keys", "generate")).code == 0
    good = [
        BrowserKeys.generate().subscription_json(f"https://fcm.googleapis.com/fcm/send/r{i}")
        for i in range(30)
    ]
    lines = [json.dumps(sub) for sub in good]
    lines[3] = json.dumps(
        {
            **good[3],
            "topics": ["world", "sport"],
            "timezone": "Asia/Tokyo",
            "quietHours": {"start": "23:00", "end": "06:30"},
            "maxPerDay": 3,
        }
    )
    bad = {
        7: "{not json",
        11: json.dumps({**good[11], "keys": {"p256dh": "AAAA", "auth": good[11]["keys"]["auth"]}}),
        15: json.dumps({**good[15], "endpoint": "https://evil.example/x"}),
        19: json.dumps({**good[19], "topics": ["gardening"]}),
        23: json.dumps({**good[23], "colour": "red"}),
        # an empty port: py_vapid would refuse its audience in the middle of an alert
        27: json.dumps({**good[27], "endpoint": "https://fcm.googleapis.com:/fcm/send/p"}),
    }
    for n, text in bad.items():
        lines[n - 1] = text
    source = tmp_path / "readers.jsonl"
    source.write_text("\n".join(lines) + "\n")
    run = await pushdesk(settings, "subscriptions", "import", str(source))
    assert run.code == 1
    assert "imported 24 new and 0 known readers; 6 lines skipped" in run.out
    reported = [line for line in run.err.splitlines() if line.strip()]
    assert [int(line.split("line ")[1].split(":")[0]) for line in reported] == sorted(bad)
    assert "subscription.keys.p256dh" not in run.err and "keys.p256dh" in run.err
    assert "not valid JSON" in run.err and "unknown topic" in run.err
    assert "empty port" in run.err

    again = await pushdesk(settings, "subscriptions", "import", str(source))
    assert "imported 0 new and 24 known readers" in again.out

    out = tmp_path / "export.jsonl"
    exported = await pushdesk(settings, "subscriptions", "export", str(out))
    assert exported.code == 0 and "exported 24 readers" in exported.out
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 24
    tokyo = next(r for r in rows if r["endpoint"] == good[3]["endpoint"])
    assert tokyo["topics"] == ["sport", "world"] and tokyo["timezone"] == "Asia/Tokyo"
    assert tokyo["quietHours"] == {"start": "23:00", "end": "06:30"} and tokyo["maxPerDay"] == 3
    assert tokyo["keys"] == good[3]["keys"]
    plain = next(r for r in rows if r["endpoint"] == good[0]["endpoint"])
    assert plain["topics"] == ["breaking"]

    missing = await pushdesk(settings, "subscriptions", "import", str(tmp_path / "nope"))
    assert missing.code == 1 and "not a readable file" in missing.err


async def test_config_file_after_the_command_with_a_topic_catalogue(settings, tmp_path):
    catalogue = tmp_path / "topics.json"
    catalogue.write_text(
        json.dumps(
            [
                {"id": "local", "name": "Local news", "default": True},
                {"id": "weather", "name": "Weather"},
            ]
        )
    )
    config = tmp_path / "pushdesk.toml"
    config.write_text(
        f'topics = "{catalogue}"\npush_hosts = ["push.example.net", "*.push.example.org"]\n'
    )
    made = await pushdesk(settings, "keys", "generate", "--config", str(config))
    assert made.code == 0, made.err
    bad = tmp_path / "bad.json"
    bad.write_text('[{"id": "Not A Valid Id!"}]')
    config.write_text(f'topics = "{bad}"\n')
    refused = await pushdesk(settings, "keys", "show", "--config", str(config))
    assert refused.code == 2 and "PUSHDESK_TOPICS" in refused.err and "topic id" in refused.err


async def test_topic_catalogue_and_push_hosts_reach_the_api(make_client, settings, tmp_path):
    from pushdesk.config import Topic
    from tests.support.helpers import BrowserKeys

    client = await make_client(
        settings,
        topics=(Topic("local", "Local news", True), Topic("weather", "Weather")),
        push_hosts=("push.example.net", "*.push.example.org"),
    )
    topics = (await (await client.get("/api/topics")).json())["topics"]
    assert topics == [
        {"id": "local", "name": "Local news", "default": True},
        {"id": "weather", "name": "Weather", "default": False},
    ]
    for endpoint, status in [
        ("https://push.example.net/a", 201),
        ("https://eu.push.example.org/b", 201),
        ("https://push.example.org.evil.example/c", 400),
        ("https://fcm.googleapis.com/fcm/send/d", 400),  # not on this allow-list
    ]:
        body = {"subscription": BrowserKeys.generate().subscription_json(endpoint)}
        resp = await client.post("/api/subscriptions", json=body)
        assert resp.status == status, endpoint
        if status == 201:
            assert (await resp.json())["topics"] == ["local"]
    resp = await client.post(
        "/api/subscriptions",
        json={
            "subscription": BrowserKeys.generate().subscription_json("https://push.example.net/e"),
            "topics": ["breaking"],
        },
    )
    assert resp.status == 400 and (await resp.json())["error"]["field"] == "topics"
