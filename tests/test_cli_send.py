"""`pushdesk send`: an editor's command against a running service over HTTP."""

from __future__ import annotations

from pushdesk.app import create_app
from tests.support.cli_runner import pushdesk
from tests.support.newsroom import Newsroom
from tests.support.sending import fast_runtime


async def live_desk(settings, aiohttp_server, aiohttp_client):
    server = await aiohttp_server(create_app(settings, fast_runtime()))
    desk = await Newsroom.open(await aiohttp_client(server))
    return desk, str(server.make_url("")).rstrip("/")


async def test_send_with_wait_shows_progress_and_final_counts(
    settings, aiohttp_server, aiohttp_client, push_service
):
    desk, url = await live_desk(settings, aiohttp_server, aiohttp_client)
    endpoints = await desk.readers(push_service, 300, ["world"])
    push_service.unsubscribe(endpoints[0])
    env = {"PUSHDESK_URL": url, "PUSHDESK_EDITOR_KEY": desk.key}
    run = await pushdesk(
        settings,
        "send",
        "--title",
        "Summit ends",
        "--url",
        "https://news.example/summit",
        "--topic",
        "world",
        "--body",
        "Leaders agree",
        "--wait",
        **env,
    )
    assert run.code == 0, run.err
    assert "audience 300" in run.out.splitlines()[0]
    assert "delivered 299" in run.out and "removed 1" in run.out
    assert "[" in run.err and "100%" in run.err  # the progress bar
    assert push_service.messages(endpoints[1])[0]["title"] == "Summit ends"

    dry = await pushdesk(
        settings,
        "send",
        "--title",
        "x",
        "--url",
        "https://news.example/other",
        "--topic",
        "world",
        "--dry-run",
        **env,
    )
    assert dry.code == 0 and "audience: 299 readers (dry run" in dry.out

    dup = await pushdesk(
        settings,
        "send",
        "--title",
        "again",
        "--url",
        "https://news.example/summit",
        "--topic",
        "world",
        **env,
    )
    assert dup.code == 1 and "force" in dup.err and len(dup.err.strip().splitlines()) == 1


async def test_send_errors_are_one_line(settings, aiohttp_server, aiohttp_client):
    desk, url = await live_desk(settings, aiohttp_server, aiohttp_client)
    args = ["send", "--title", "T", "--url", "https://news.example/x"]
    no_key = await pushdesk(settings, *args, PUSHDESK_URL=url)
    assert no_key.code == 1 and "PUSHDESK_EDITOR_KEY" in no_key.err
    wrong = await pushdesk(settings, *args, PUSHDESK_URL=url, PUSHDESK_EDITOR_KEY="nope")
    assert wrong.code == 1 and "editor key is required" in wrong.err
    down = await pushdesk(
        settings, *args, PUSHDESK_URL="http://127.0.0.1:9", PUSHDESK_EDITOR_KEY=desk.key
    )
    assert down.code == 1 and "cannot reach pushdesk" in down.err
    bad_topic = await pushdesk(
        settings, *args, "--topic", "gardening", PUSHDESK_URL=url, PUSHDESK_EDITOR_KEY=desk.key
    )
    assert bad_topic.code == 1 and "unknown topic" in bad_topic.err
    for run in (no_key, wrong, down, bad_topic):
        assert len(run.err.strip().splitlines()) == 1 and "Traceback" not in run.err


async def test_send_wait_exits_non_zero_when_the_alert_is_cancelled(
    settings, aiohttp_server, aiohttp_client, push_service
):
    import asyncio
    import sys

    from tests.support.cli_runner import env_for

    desk, url = await live_desk(settings, aiohttp_server, aiohttp_client)
    await desk.readers(push_service, 400, ["breaking"])
    push_service.delay = 0.05  # slow enough to cancel in the middle
    env = env_for(settings, PUSHDESK_URL=url, PUSHDESK_EDITOR_KEY=desk.key)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "pushdesk",
        "send",
        "--title",
        "Wrong",
        "--url",
        "https://news.example/wrong",
        "--wait",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    for _ in range(200):
        alerts = await desk.store.list_alerts(1)
        if alerts and alerts[0].counts["sent"] > 0:
            break
        await asyncio.sleep(0.05)
    resp = await desk.client.post(f"/api/alerts/{alerts[0].public_id}/cancel", headers=desk.auth)
    assert resp.status == 200
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 1
    assert f"alert {alerts[0].public_id} cancelled" in out.decode()
    assert "(cancelled)" in err.decode()  # the progress bar's last state
