"""`pushdesk bench` runs on a small N and prints its figures. It asserts no speed."""

from __future__ import annotations

import os
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


async def test_bench_at_a_distance_over_tls_prints_what_the_push_service_saw(settings):
    """`--latency 20 --tls`: the built-in sink answers after 20 ms over TLS (its certificate
    trusted for the run only), offering HTTP/2 and HTTP/1.1; the figures say what it saw."""
    run = await pushdesk(
        settings,
        *("bench", "--subscribers", "300", "--workers", "1", "--baseline-seconds", "0.5"),
        *("--latency", "20", "--tls"),
    )
    assert run.code == 0, run.err[-2000:]
    assert "done: 300 delivered, 0 failed" in run.out
    assert "answers after 20 ms, TLS (h2 and http/1.1 offered in ALPN)" in run.out
    saw = next(x for x in run.out.splitlines() if x.startswith("push service saw"))
    connections = int(re.search(r"(\d+) connections", saw).group(1))  # type: ignore[union-attr]
    handshakes = int(re.search(r"(\d+) TLS handshakes", saw).group(1))  # type: ignore[union-attr]
    assert 1 <= connections <= 512 and handshakes >= connections  # the baselines' come later
    assert re.search(r"\b300 requests", saw)
    for name in FIGURES:
        assert any(x.startswith(name) for x in run.out.splitlines()), name


async def test_bench_refuses_bad_arguments(settings):
    run = await pushdesk(settings, "bench", "--subscribers", "0")
    assert run.code == 2 and "invalid count" in run.err


def test_the_sinks_certificate_is_trusted_for_the_run_only(tmp_path, monkeypatch):
    from pushdesk.bench import _trusting

    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/operators.pem")
    cert = tmp_path / "cert.pem"
    with _trusting(cert):
        assert os.environ["SSL_CERT_FILE"] == os.environ["REQUESTS_CA_BUNDLE"] == str(cert)
    assert "SSL_CERT_FILE" not in os.environ
    assert os.environ["REQUESTS_CA_BUNDLE"] == "/etc/ssl/operators.pem"
