"""The editor console in headless Chromium: compose, preview, audience, confirm, send, done."""

from __future__ import annotations

import pytest

from pushdesk.app import create_app
from tests.support.browser import open_page, wait_until
from tests.support.newsroom import Newsroom
from tests.support.sending import fast_runtime

pytestmark = pytest.mark.browser


@pytest.fixture
def database(tmp_path):
    """Browser tests exercise the pages and the worker script; one store is enough."""
    return f"sqlite:///{tmp_path / 'data' / 'pushdesk.db'}"


async def test_console_composes_previews_sends_and_follows_to_done(
    browser, settings, aiohttp_server, aiohttp_client, push_service, tmp_path
):
    server = await aiohttp_server(create_app(settings, fast_runtime()))
    desk = await Newsroom.open(await aiohttp_client(server))
    sport = await desk.readers(push_service, 120, ["sport"])
    others = await desk.readers(push_service, 30, ["culture"])
    base = str(server.make_url("")).rstrip("/")
    page, errors = await open_page(browser, base)
    response = await page.goto(base + "/console")
    assert (
        response is not None and "script-src 'self'" in response.headers["content-security-policy"]
    )

    await page.fill("#key", "not-a-key")
    await page.click("#login-form button")
    await wait_until(page, "document.getElementById('login-error').textContent.length > 0")
    await page.fill("#key", desk.key)
    await page.click("#login-form button")
    await wait_until(page, "!document.getElementById('desk').hidden")
    await wait_until(page, "document.querySelectorAll('#topics input').length >= 9")

    await page.fill("#title", "Cup final: late winner")
    await page.fill("#url", "https://news.example/sport/cup-final")
    await page.fill("#body", "A stoppage-time goal settles it")
    assert await page.text_content("#preview-title") == "Cup final: late winner"
    assert await page.text_content("#preview-body") == "A stoppage-time goal settles it"
    assert await page.text_content("#preview-origin") == "news.example"
    await page.uncheck("#topics input[value=breaking]")
    await page.check("#topics input[value=sport]")

    await page.click("#check")
    await wait_until(page, "document.getElementById('audience').textContent.includes('120')")
    assert await desk.store.list_alerts(5) == []  # the dry run stored nothing

    await page.click("#send")
    await wait_until(page, "!document.getElementById('confirm').hidden")
    assert "120 readers" in await page.text_content("#confirm-text")
    await page.click("#confirm-send")
    await wait_until(page, "document.getElementById('current').dataset.status === 'done'", 30)
    counts = await page.text_content("#current-counts")
    assert "delivered 120" in counts and "audience 120" in counts
    await wait_until(page, "document.querySelectorAll('#history tbody tr').length === 1")
    assert "Cup final" in await page.text_content("#history tbody tr")

    assert all(len(push_service.messages(e)) == 1 for e in sport)
    assert all(push_service.messages(e) == [] for e in others)
    [alert] = await desk.store.list_alerts(5)

    # Readers' browsers report: the console's chart and figures follow.
    readers = {s.endpoint: s.public_id for s in await desk.store.list_subscriptions()}
    for n, endpoint in enumerate(sport[:90]):  # 30 readers never saw it (phone off)
        for kind in ("shown", "clicked") if n < 30 else ("shown",):
            body = {"type": kind, "alertId": alert.public_id, "subscriptionId": readers[endpoint]}
            assert (await desk.client.post("/api/events", json=body)).status == 204
    await wait_until(
        page,
        "document.getElementById('current-engagement').textContent.includes('clicked 30')",
        15,
    )
    assert "click rate 25.0%" in await page.text_content("#current-engagement")
    assert "(p50)" in await page.text_content("#current-engagement")
    await wait_until(page, "Number(document.getElementById('chart').dataset.points) > 0")
    shot = tmp_path / "chart.png"
    await page.locator("#chart").screenshot(path=str(shot))
    assert chart_is_drawn(shot)
    assert "30 (25.0%)" in await page.text_content("#history tbody tr")
    assert errors == [] or all("401" in e for e in errors)


def chart_is_drawn(png) -> bool:
    """The screenshot holds the three lines: enough pixels of each line's colour."""
    from PIL import Image

    image = Image.open(png).convert("RGB")
    pixels = list(image.get_flattened_data())

    def near(colour, tolerance=60):
        return sum(
            1
            for p in pixels
            if all(abs(a - b) <= tolerance for a, b in zip(p, colour, strict=True))
        )

    red, dark, blue = near((199, 0, 0)), near((51, 51, 51), 30), near((26, 107, 214))
    white = near((255, 255, 255), 5)
    assert white < len(pixels) * 0.99, "the chart is blank"
    assert red > 100 and blue > 100 and dark > 100, (red, dark, blue)
    return True
