"""Files that hold readers' secrets (endpoints, auth secrets, keys): owner-only from the first
byte, and in place only once whole, so a failed copy never looks like a complete one."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

OWNER_ONLY = 0o600


def partial_path(path: Path) -> Path:
    """A hidden name beside `path` for it while it is being written."""
    return path.with_name(f".{path.name}.{secrets.token_hex(4)}.partial")


def create_owner_only(path: Path) -> None:
    """Create `path` empty with mode 0600 (never a moment readable by others); it must not
    exist yet."""
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, OWNER_ONLY))


@contextlib.contextmanager
def written_whole(path: Path) -> Iterator[TextIO]:
    """A text file for `path`, mode 0600, that replaces `path` only once written and synced;
    if writing fails, nothing is left behind."""
    partial = partial_path(path)
    create_owner_only(partial)
    try:
        with partial.open("w", encoding="utf-8") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
