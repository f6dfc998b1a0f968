"""schemathesis fuzzes the running service from its own OpenAPI document: no 500 on any input.

Bounded (a few dozen examples per operation) so it belongs in every CI run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from pushdesk.api.openapi import build_spec
from tests.support.cli_runner import free_port

schema = schemathesis.openapi.from_dict(build_spec())


@pytest.fixture(scope="module")
def live_service(tmp_path_factory):
    home = tmp_path_factory.mktemp("fuzz")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PUSHDESK_")}
    env.update(
        PUSHDESK_DATABASE=f"sqlite:///{home / 'pushdesk.db'}",
        PUSHDESK_KEYS_DIR=str(home / "keys"),
        PUSHDESK_VAPID_SUBJECT="mailto:fuzz@example.com",
        PUSHDESK_RATE_LIMIT="off",
        PUSHDESK_LOG_LEVEL="ERROR",
    )
    added = subprocess.run(
        [sys.executable, "-m", "pushdesk", "editors", "add", "fuzz"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    key = added.stdout.strip().splitlines()[-1]
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "pushdesk", "serve", "--port", str(port), "--workers", "0"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            urllib.request.urlopen(base + "/healthz", timeout=1)
            break
        except OSError:
            time.sleep(0.05)
    yield base, key
    proc.terminate()
    proc.wait(15)


@schema.parametrize()
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_no_input_makes_a_server_error(case, live_service):
    base, key = live_service
    response = case.call(base_url=base, headers={"Authorization": f"Bearer {key}"})
    assert response.status_code < 500, (case.method, case.path, response.text[:300])
    if response.status_code >= 400 and case.path.startswith("/api/") and case.method != "HEAD":
        assert response.text.startswith("{"), (
            case.method,
            case.path,
            response.status_code,
            response.text[:200],
        )
        error = json.loads(response.text)["error"]  # every API error has the one shape
        assert error["code"] and error["message"], response.text
