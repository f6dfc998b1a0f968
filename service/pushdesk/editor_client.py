"""`pushdesk send`: an editor's HTTP client for a running service, with a live progress bar."""

from __future__ import annotations

import asyncio
import os
import sys
from dataclasses import dataclass
from typing import Any, TextIO

import aiohttp

from .errors import CliError

FINAL = ("done", "cancelled", "failed")  # AlertStatus values, as the API writes them
POLL_SECONDS = 0.5


@dataclass
class EditorClient:
    base_url: str
    key: str

    @classmethod
    def from_environment(cls) -> EditorClient:
        key = os.environ.get("PUSHDESK_EDITOR_KEY", "").strip()
        if not key:
            raise CliError("set PUSHDESK_EDITOR_KEY to your editor key (pushdesk editors add)")
        base = os.environ.get("PUSHDESK_URL", "http://127.0.0.1:8080").rstrip("/")
        if not base.startswith(("http://", "https://")):
            raise CliError(f"PUSHDESK_URL must be an http(s) URL, not {base!r}")
        return cls(base, key)

    async def call(
        self, session: aiohttp.ClientSession, method: str, path: str, **kwargs: Any
    ) -> tuple[int, dict[str, Any]]:
        headers = {"Authorization": f"Bearer {self.key}", **kwargs.pop("headers", {})}
        try:
            async with session.request(
                method, self.base_url + path, headers=headers, **kwargs
            ) as resp:
                try:
                    data = await resp.json(content_type=None)
                except ValueError:
                    data = None
                if not isinstance(data, dict):
                    raise CliError(f"{self.base_url} answered HTTP {resp.status} without JSON")
                return resp.status, data
        except aiohttp.ClientError as exc:
            raise CliError(f"cannot reach pushdesk at {self.base_url}: {exc}") from None
        except TimeoutError:
            raise CliError(f"pushdesk at {self.base_url} did not answer in time") from None


def error_text(data: dict[str, Any], status: int) -> str:
    error = data.get("error")
    message = error.get("message") if isinstance(error, dict) else None
    return str(message or f"HTTP {status}")


async def send_alert(
    client: EditorClient,
    body: dict[str, Any],
    idempotency_key: str | None,
    wait: bool,
    out: TextIO = sys.stdout,
    err: TextIO = sys.stderr,
) -> int:
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        status, data = await client.call(session, "POST", "/api/alerts", json=body, headers=headers)
        if status >= 400:
            raise CliError(error_text(data, status))
        if data.get("dryRun"):
            print(f"audience: {data['audience']} readers (dry run, nothing sent)", file=out)
            return 0
        print(f"alert {data['id']} {data['status']}: audience {data['audience']}", file=out)
        if not wait:
            return 0
        final = await follow(client, session, data["id"], err)
    counts = final["counts"]
    print(
        f"alert {final['id']} {final['status']}: "
        + ", ".join(
            f"{k} {counts[k]}"
            for k in ("audience", "delivered", "removed", "failed", "skipped", "deferred")
        ),
        file=out,
    )
    return 0 if final["status"] == "done" else 1


async def follow(
    client: EditorClient, session: aiohttp.ClientSession, alert_id: str, err: TextIO
) -> dict[str, Any]:
    """Poll the alert, drawing a progress bar, until it is done, cancelled or failed."""
    while True:
        status, data = await client.call(session, "GET", f"/api/alerts/{alert_id}")
        if status >= 400:
            raise CliError(error_text(data, status))
        err.write("\r" + progress_line(data))
        err.flush()
        if data["status"] in FINAL:
            err.write("\n")
            return data
        await asyncio.sleep(POLL_SECONDS)


def progress_line(alert: dict[str, Any], width: int = 30) -> str:
    counts = alert["counts"]
    worked = sum(counts[k] for k in ("delivered", "removed", "failed", "skipped", "deferred"))
    total = max(counts["audience"], worked, 1)
    filled = int(width * worked / total)
    bar = "#" * filled + "-" * (width - filled)
    return (
        f"[{bar}] {100 * worked // total:3d}% {worked}/{counts['audience']} "
        f"delivered {counts['delivered']} removed {counts['removed']} failed {counts['failed']} "
        f"skipped {counts['skipped']} deferred {counts['deferred']} ({alert['status']})"
    )
