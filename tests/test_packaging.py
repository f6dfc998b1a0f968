"""What `pip install` puts in place: the package `pushdesk`, never a top-level `service`, and a
production install without the benchmark's and the tests' libraries."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).parent.parent


def test_the_package_is_pushdesk_and_service_is_not_importable(tmp_path):
    """From any directory (not the repository root, whose `service/` folder a bare `python`
    would find), `import pushdesk` works and `import service` fails."""
    found = subprocess.run(
        [sys.executable, "-c", "import pushdesk, pushdesk.cli; print(pushdesk.__name__)"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert found.returncode == 0 and found.stdout.strip() == "pushdesk"
    missing = subprocess.run(
        [sys.executable, "-c", "import service"], cwd=tmp_path, capture_output=True, text=True
    )
    assert missing.returncode != 0 and "No module named 'service'" in missing.stderr
    module = subprocess.run(
        [sys.executable, "-m", "pushdesk", "--help"], cwd=tmp_path, capture_output=True, text=True
    )
    assert module.returncode == 0 and module.stdout.startswith("usage: pushdesk")


def test_production_dependencies_leave_out_the_baselines_and_test_libraries():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    production = " ".join(project["dependencies"]).lower()
    assert "pywebpush" not in production and "http-ece" not in production
    extras = project["optional-dependencies"]
    assert any(d.startswith("pywebpush") for d in extras["bench"])
    assert any(d.startswith("http-ece") for d in extras["test"])
    assert project["scripts"]["pushdesk"] == "pushdesk.cli:main"
