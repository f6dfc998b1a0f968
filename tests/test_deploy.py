"""Check what can be checked of deploy/ on this machine: the systemd units and the nginx site."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

DEPLOY = Path(__file__).parent.parent / "deploy"
PUSHDESK = Path(sys.executable).parent / "pushdesk"


def test_systemd_units_verify_cleanly(tmp_path):
    if shutil.which("systemd-analyze") is None:
        pytest.fail("systemd-analyze is missing: scripts/test.sh installs systemd")
    units = []
    for unit in (DEPLOY / "systemd").glob("*.service"):
        text = unit.read_text().replace("/opt/pushdesk/.venv/bin/pushdesk", str(PUSHDESK))
        name = unit.name.replace("@.service", "@1.service")
        (tmp_path / name).write_text(text)
        units.append(str(tmp_path / name))
    assert len(units) == 2
    result = subprocess.run(
        ["systemd-analyze", "verify", *units], capture_output=True, text=True, timeout=60
    )
    # verify exits 0 even for unknown keys; any line it prints is a problem.
    problems = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    assert result.returncode == 0 and problems == [], problems


def test_nginx_site_passes_nginx_t(tmp_path):
    if shutil.which("nginx") is None:
        pytest.fail("nginx is missing: scripts/test.sh installs it")
    tls = tmp_path / "tls"
    tls.mkdir()
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            tls / "privkey.pem",
            "-out",
            tls / "fullchain.pem",
            "-days",
            "1",
            "-subj",
            "/CN=push.news.example",
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    site = (DEPLOY / "nginx" / "pushdesk.conf").read_text().replace("/etc/pushdesk/tls", str(tls))
    (tmp_path / "site.conf").write_text(site)
    (tmp_path / "nginx.conf").write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\nevents {{}}\n"
        f"http {{\n  access_log off;\n  include {tmp_path}/site.conf;\n}}\n"
    )
    result = subprocess.run(
        ["nginx", "-t", "-c", str(tmp_path / "nginx.conf"), "-p", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr
