"""Helpers for tests that drive the sender and the fan-out directly: fast retry settings, a
prepared message, a target, and the embedded worker tuned for tests."""

from __future__ import annotations

from typing import Any

from pushdesk.app import Runtime
from pushdesk.fanout import WorkerOptions
from pushdesk.webpush.payload import Message
from pushdesk.webpush.sender import PreparedMessage, SenderOptions, Target, prepare
from pushdesk.webpush.vapid import KeyRing


def fast_options(**changes: Any) -> SenderOptions:
    """Sender options with quick retries, loopback allowed (the fake push services)."""
    options = SenderOptions(allow_loopback=True, backoff_base=0.02, backoff_cap=0.1)
    for name, value in changes.items():
        setattr(options, name, value)
    return options


def target_for(endpoint: str, keys: Any, keyring: KeyRing) -> Target:
    return Target(endpoint, keys.p256dh, keys.auth, keyring.active_id)


def message(ttl: int = 600, **fields: Any) -> PreparedMessage:
    msg = Message(title=fields.pop("title", "Breaking"), url="https://news.example/story", **fields)
    return prepare(msg, ttl=ttl, urgency="high", topic="alert123")


def fast_runtime(sender: dict[str, Any] | None = None, **worker: Any) -> Runtime:
    """Embedded worker tuned for tests: short polls, small batches, quick retries."""
    options = {"poll_interval": 0.05, "batch_size": 100, "inline_wait": 0.5, **worker}
    sending = {"allow_loopback": True, "backoff_base": 0.01, "backoff_cap": 0.05, **(sender or {})}
    return Runtime(worker=WorkerOptions(**options), sender=SenderOptions(**sending))
