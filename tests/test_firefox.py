"""A real Firefox receives and decrypts what pushdesk sends (see tests/support/firefox/scenario.py).

The scenario runs once, inside its own network namespace (`unshare -n`), with pushdesk, a push
server speaking Mozilla's protocol and headless firefox-esr on that namespace's loopback only.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser
ROOT = Path(__file__).parent.parent
ARTICLE = "https://news.example/2026/11/25/vote-tonight"


@pytest.fixture(scope="module")
def firefox(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("firefox") / "result.json"
    command = f"ip link set lo up && exec {sys.executable} -m tests.support.firefox.scenario {out}"
    run = subprocess.run(
        ["unshare", "-n", "sh", "-c", command],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0 and out.exists(), run.stderr[-3000:]
    results = json.loads(out.read_text())
    errors = {k: v["error"] for k, v in results.items() if isinstance(v, dict) and "error" in v}
    if errors:
        print(results.get("firefox_log", ""))
    return results


def step(firefox: dict, name: str) -> dict:
    result = firefox[name]
    assert "error" not in result, result.get("error")
    return result


def test_it_is_a_real_firefox(firefox):
    assert firefox["firefox"].split(".")[0].isdigit()
    hello = [m for m in firefox["push_log"] if m.get("messageType") == "hello"]
    assert hello, "Firefox connected to the test push server"


def test_widget_subscribes_and_firefox_decrypts_and_shows_the_alert(firefox):
    result = step(firefox, "subscribe_and_receive")
    [sub] = result["subscriptions"]
    assert sub["topics"] == ["breaking", "politics"]
    assert sub["endpoint"].rsplit("/", 1)[1] in result["channels"]
    assert result["alert"]["counts"]["delivered"] == 1
    assert [ack["code"] for ack in result["acks"]] == [100]  # decrypted and delivered
    [shown] = result["shown"]
    assert shown["title"] == "Parliament votes on the budget tonight"
    assert shown["body"] == "Debate ends at 10pm"
    assert shown["data"] == {"url": ARTICLE, "alertId": result["alert"]["id"]}
    assert shown["tag"] == result["alert"]["id"]


def test_clicking_the_notification_opens_the_article(firefox):
    clicked = step(firefox, "subscribe_and_receive")["clicked"]
    assert clicked["alert_windows"], "Firefox showed its alert window"
    assert ARTICLE in clicked["tabs"]


def test_the_service_worker_reports_shown_and_clicked(firefox):
    counts = step(firefox, "subscribe_and_receive")["engagement"]
    assert counts["shown"] == 1 and counts["clicked"] == 1


def test_turning_a_topic_off_stops_its_next_alert(firefox):
    result = step(firefox, "change_preferences")
    assert result["subscriptions"][0]["topics"] == ["breaking"]
    assert result["alert"]["counts"]["audience"] == 0
    assert result["requests_to_push_service"] == 0


def test_key_rotation_moves_firefox_to_the_new_key(firefox):
    result = step(firefox, "rotate_key")
    [before], [after] = result["before"], result["after"]
    assert after["id"] == before["id"] and after["key"] == result["new_key_id"]
    assert after["key"] != before["key"] and after["endpoint"] != before["endpoint"]
    assert result["channel_key"] == result["new_key"]  # Firefox subscribed with the new key
    assert result["old_channel_gone"]
    assert result["alert"]["counts"]["delivered"] == 1
    assert [ack["code"] for ack in result["acks"]] == [100]
    assert [n["title"] for n in result["shown"]] == ["Budget passes"]


def test_firefox_unsubscribed_behind_our_back_is_removed_on_410(firefox):
    result = step(firefox, "unsubscribed_behind_our_back")
    assert result["channel_gone"]
    assert result["answers"][-1] == 410
    assert result["alert"]["counts"]["removed"] == 1
    assert result["subscriptions"] == []


def test_unsubscribing_with_the_widget(firefox):
    result = step(firefox, "unsubscribe_with_widget")
    assert result["subscribed_again"]["topics"] == ["breaking"]
    assert result["channel_gone"]  # Firefox told the push service
    assert result["browser_has_none"]
    assert result["subscriptions"] == []  # and pushdesk deleted the reader
