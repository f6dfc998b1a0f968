"""`pushdesk bench` runs on a small N and prints its figures. It asserts no speed."""

from __future__ import annotations

import re

import pytest

from tests.support.cli_runner import pushdesk


@pytest.fixture
def database(tmp_path):
    """The bench builds its own scratch store; run it once, not once per store."""
    return f"sqlite:///{tmp_path / 'data' / 'pushdesk.db'}"


FIGURES = [
    "sink",
    "readers loaded",
    "alert",
    "pushdesk messages/s",
    "total time",
    "time to first request",
    "API p99 while sending",
    "peak memory",
    "CPU used",
    "pywebpush webpush() loop",
    "pywebpush webpush_async x100",
    "aiohttp ClientSession + encryption",
    "ratios",
]


async def test_bench_runs_and_prints_every_figure(settings):
    run = await pushdesk(
        settings, "bench", "--subscribers", "400", "--workers", "1", "--baseline-seconds", "0.5"
    )
    assert run.code == 0, run.err[-2000:]
    for name in FIGURES:
        line = next((x for x in run.out.splitlines() if x.startswith(name)), None)
        assert line is not None, f"{name!r} missing from:\n{run.out}"
        assert re.search(r"\d", line.removeprefix(name)), line
    assert "done: 400 delivered, 0 failed" in run.out
    assert "sending the alert" in run.err  # the progress bar


async def test_bench_refuses_bad_arguments(settings):
    run = await pushdesk(settings, "bench", "--subscribers", "0")
    assert run.code == 2 and "invalid count" in run.err
