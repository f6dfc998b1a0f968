"""Running the `pushdesk` command as a real process from async tests."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from dataclasses import dataclass

from pushdesk.config import Settings


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Run:
    code: int
    out: str
    err: str


def env_for(settings: Settings, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PUSHDESK_")}
    env.update(
        PUSHDESK_DATABASE=settings.database,
        PUSHDESK_KEYS_DIR=str(settings.keys_dir),
        PUSHDESK_VAPID_SUBJECT=settings.vapid_subject,
        PUSHDESK_ALLOW_HTTP_ENDPOINTS="true" if settings.allow_http_endpoints else "false",
    )
    if settings.rate_limit is None:
        env["PUSHDESK_RATE_LIMIT"] = "off"
    env.update(extra)
    return env


async def pushdesk(settings: Settings, *args: str, **env: str) -> Run:
    """Run the CLI without blocking the loop (the fake push service lives in it)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "pushdesk",
        *args,
        env=env_for(settings, **env),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return Run(proc.returncode, out.decode(), err.decode())
