"""Where the tests find PostgreSQL (the machine's own, trust auth, database `test`)."""

from __future__ import annotations

import os

POSTGRES_URL = os.environ.get("PUSHDESK_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
