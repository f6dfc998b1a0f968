"""`pushdesk backup`: a consistent copy of a live SQLite database, and the keys beside it."""

from __future__ import annotations

import os
import shutil
import sqlite3
from pathlib import Path

from .errors import CliError


def backup_sqlite(source: Path, keys_dir: Path, target: Path) -> int:
    """SQLite's online backup API: safe while the service writes. Returns key files copied."""
    if target.exists():
        raise CliError(f"{target} exists already; choose a new path")
    target.parent.mkdir(parents=True, exist_ok=True)
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    dst = sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        dst.close()
        src.close()
    os.chmod(target, 0o600)
    keys_target = Path(f"{target}.keys")
    keys_target.mkdir(mode=0o700)
    copied = 0
    for key in sorted(keys_dir.glob("*.pem")):
        shutil.copy2(key, keys_target / key.name)
        os.chmod(keys_target / key.name, 0o600)
        copied += 1
    return copied
