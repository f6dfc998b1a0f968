"""`pushdesk backup`: a consistent copy of a live SQLite database, and the keys beside it.

Both are owner-only from their first byte and appear under their names only once complete:
the copy is made under hidden partial names and renamed at the end, the database last, so a
backup that failed half-way leaves nothing that looks like a backup.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from pathlib import Path

from .errors import CliError
from .secure_files import create_owner_only, partial_path


def backup_sqlite(source: Path, keys_dir: Path, target: Path) -> int:
    """SQLite's online backup API: safe while the service writes. Returns key files copied."""
    keys_target = Path(f"{target}.keys")
    if target.exists() or keys_target.exists():
        raise CliError(f"{target} (or {keys_target}) exists already; choose a new path")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial, keys_partial = partial_path(target), partial_path(keys_target)
    try:
        create_owner_only(partial)
        src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
        dst = sqlite3.connect(partial)
        try:
            src.backup(dst)
        finally:
            dst.close()
            src.close()
        keys_partial.mkdir(mode=0o700)
        copied = 0
        for key in sorted(keys_dir.glob("*.pem")):
            copy = keys_partial / key.name
            create_owner_only(copy)
            with key.open("rb") as fh, copy.open("wb") as out:
                shutil.copyfileobj(fh, out)
            copied += 1
        os.rename(keys_partial, keys_target)
        os.rename(partial, target)  # last: a database at `target` means the backup is whole
    except BaseException:
        partial.unlink(missing_ok=True)
        shutil.rmtree(keys_partial, ignore_errors=True)
        if not target.exists():
            shutil.rmtree(keys_target, ignore_errors=True)
        raise
    return copied
