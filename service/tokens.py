"""Random ids and bearer secrets, and how they are kept: only as hashes, compared in constant time.

Tokens and editor keys are 256-bit random values, so a plain SHA-256 is enough (no slow KDF is
needed against guessing), and lookups stay cheap.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string

ID_ALPHABET = string.ascii_letters + string.digits
ID_LENGTH = 16
ID_SPACE = len(ID_ALPHABET) ** ID_LENGTH


def new_public_id() -> str:
    """An unguessable id for the API: 16 letters and digits (95 bits).

    No '-' or '_': an id that starts with '-' reads as an option on a command line
    (`pushdesk push -Xa3...`), and ids are also the alerts' Topic header and notification tag.
    """
    # One draw over every possible id, written in base 62: the same uniform choice as sixteen
    # secrets.choice() calls at a fifth of the cost (an import makes one per reader).
    number = secrets.randbelow(ID_SPACE)
    letters = []
    for _ in range(ID_LENGTH):
        number, digit = divmod(number, len(ID_ALPHABET))
        letters.append(ID_ALPHABET[digit])
    return "".join(letters)


def new_secret() -> str:
    """A bearer secret: subscription management tokens and editor API keys."""
    return secrets.token_urlsafe(32)


def hash_secret(secret: str) -> bytes:
    return hashlib.sha256(secret.encode("utf-8")).digest()


def secret_matches(secret: str, stored_hash: bytes | None) -> bool:
    """Constant-time check; a missing hash still costs one comparison."""
    expected = stored_hash if stored_hash is not None else b"\0" * 32
    return hmac.compare_digest(hash_secret(secret), expected) and stored_hash is not None
