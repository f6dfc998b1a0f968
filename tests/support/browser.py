"""Shared helpers for the Chromium tests (Debian's chromium driven by Playwright)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Browser, Page, async_playwright

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        await browser.close()


async def wait_until(page: Page, expression: str, seconds: float = 10.0):
    """Poll a page expression until it is truthy. Playwright's wait_for_function compiles its
    predicate with eval, which the pages' strict CSP forbids; evaluate() goes through DevTools."""
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        value = await page.evaluate(expression)
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {expression}")
        await asyncio.sleep(0.05)


async def open_page(browser: Browser, base: str) -> tuple[Page, list[str]]:
    context = await browser.new_context()
    await context.grant_permissions(["notifications"], origin=base)
    page = await context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    return page, errors
