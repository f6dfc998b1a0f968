"""Hostile answers for the fake push service's scripts, each with what pushdesk should make of
it: try that reader again, or take it as the service's final word."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tests.support.fake_push import Raw


@dataclass(frozen=True)
class Step:
    name: str
    script: Any  # a FakePushService script step
    retryable: bool = True


def answer(status: int, *headers: bytes, body: bytes = b"") -> bytes:
    head = b"HTTP/1.1 %d X\r\n" % status + b"".join(h + b"\r\n" for h in headers)
    return head + b"Content-Length: %d\r\n\r\n" % len(body) + body


HOSTILE = (
    Step("garbage status line", Raw(b"HTTP/9 banana\r\n\r\n")),
    Step("not HTTP at all", Raw(b"\x00\xff" * 40)),
    Step("retry-after superscript two", Raw(answer(503, b"Retry-After: \xb2"))),
    Step("retry-after fraction", Raw(answer(429, b"Retry-After: 0.5"))),
    Step("retry-after negative", Raw(answer(503, b"Retry-After: -5"))),
    Step("retry-after date garbage", Raw(answer(503, b"Retry-After: Mon, 99 Foo 9999 99:99 GMT"))),
    Step("huge 500 body", Raw(answer(500, body=b"[" * 200_000))),
    Step("deep 503 json", Raw(answer(503, body=b"[" * 1024))),
    Step("endless headers", Raw(b"HTTP/1.1 503 X\r\n" + b"X-A: b\r\n" * 5000 + b"\r\n")),
    Step("cut mid-answer", Raw(b"HTTP/1.1 201 Created\r\nContent-Length: 10\r\n\r\nabc")),
    Step("reset", "reset"),
    Step("hang", "hang"),
    Step("429 storm", (429, {"Retry-After": "1"})),
    Step("502", (502, {})),
    Step("gone", (410, {}), retryable=False),
    Step("not found", (404, {}), retryable=False),
    Step("deep 400 json", (400, {}, b"[" * 1024), retryable=False),
)


def expected(script: list[Step], max_attempts: int) -> str:
    """What pushdesk should make of a reader's script: delivered, or a final count."""
    for attempt, step in enumerate(script, start=1):
        if not step.retryable:
            return "removed" if step.name in ("gone", "not found") else "failed"
        if attempt >= max_attempts:
            return "failed"
    return "delivered"
