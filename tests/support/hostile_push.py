"""A push service that misbehaves on purpose, speaking raw bytes on loopback.

aiohttp's server cannot send a garbage status line, reset a connection in the middle, or hang;
this one can. Each endpoint follows its script one request at a time (a step per request), then
behaves: it checks the VAPID JWT and decrypts the payload as the fake push service and a
browser do, so a delivery counts only when the bytes on the wire were right.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import struct
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import SimpleNamespace

import http_ece
from multidict import CIMultiDict

from tests.support.fake_push import check_push_headers, check_vapid
from tests.support.helpers import BrowserKeys


@dataclass(frozen=True)
class Step:
    """One answer: `raw` bytes (then the connection closes if `close`), or an act."""

    name: str
    raw: bytes = b""
    close: bool = False
    act: str = ""  # "ok" (check, decrypt, 201) | "reset" | "hang"
    retryable: bool = True  # what pushdesk should make of it: try again, or a final answer


def answer(status: int, *headers: bytes, body: bytes = b"") -> bytes:
    head = b"HTTP/1.1 %d X\r\n" % status + b"".join(h + b"\r\n" for h in headers)
    return head + b"Content-Length: %d\r\n\r\n" % len(body) + body


OK = Step("ok", act="ok", retryable=False)
HOSTILE = (
    Step("garbage status line", b"HTTP/9 banana\r\n\r\n", close=True),
    Step("not HTTP at all", b"\x00\xff" * 40, close=True),
    Step("retry-after superscript two", answer(503, b"Retry-After: \xb2")),
    Step("retry-after fraction", answer(429, b"Retry-After: 0.5")),
    Step("retry-after negative", answer(503, b"Retry-After: -5")),
    Step("retry-after date garbage", answer(503, b"Retry-After: Mon, 99 Foo 9999 99:99 GMT")),
    Step("huge 500 body", answer(500, body=b"[" * 200_000)),
    Step("deep 503 json", answer(503, body=b"[" * 1024)),
    Step("endless headers", b"HTTP/1.1 503 X\r\n" + b"X-A: b\r\n" * 5000 + b"\r\n", close=True),
    Step("cut mid-answer", b"HTTP/1.1 201 Created\r\nContent-Length: 10\r\n\r\nabc", close=True),
    Step("reset", act="reset"),
    Step("hang", act="hang"),
    Step("429 storm", answer(429, b"Retry-After: 1")),
    Step("502", answer(502)),
    Step("gone", answer(410, body=b'{"errno": 106}'), retryable=False),
    Step("not found", answer(404), retryable=False),
    Step("deep 400 json", answer(400, body=b"[" * 1024), retryable=False),
)


class HostilePushService:
    def __init__(self, hang_seconds: float = 2.0) -> None:
        self.hang_seconds = hang_seconds
        self.keys: dict[str, BrowserKeys] = {}
        self.scripts: dict[str, list[Step]] = {}
        self.requests: Counter[str] = Counter()
        self.received: Counter[str] = Counter()
        self.refusals: list[str] = []  # what the "ok" step refused (must stay empty)
        self.on_request: Callable[[str], Awaitable[None]] | None = None
        self._server: asyncio.Server | None = None
        self.base = ""

    async def start(self) -> HostilePushService:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, limit=1 << 16)
        port = self._server.sockets[0].getsockname()[1]
        self.base = f"http://127.0.0.1:{port}"
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1)

    def subscribe(self, script: list[Step]) -> tuple[str, BrowserKeys]:
        endpoint_id = f"r{len(self.keys):04d}"
        self.keys[endpoint_id] = BrowserKeys.generate()
        self.scripts[endpoint_id] = list(script)
        return f"{self.base}/push/{endpoint_id}", self.keys[endpoint_id]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                request = await read_request(reader)
                if request is None:
                    return
                if not await self._answer(request, writer):
                    return
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            return
        finally:
            writer.close()

    async def _answer(self, request: SimpleNamespace, writer: asyncio.StreamWriter) -> bool:
        """Answer one request; False when the connection is to be closed."""
        endpoint_id = request.path.rsplit("/", 1)[-1]
        self.requests[endpoint_id] += 1
        if self.on_request is not None:
            await self.on_request(endpoint_id)
        script = self.scripts.get(endpoint_id, [])
        step = script.pop(0) if script else OK
        if step.act == "reset":
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
            return False
        if step.act == "hang":
            await asyncio.sleep(self.hang_seconds)
            return False
        if step.act == "ok":
            writer.write(self._deliver(endpoint_id, request))
        else:
            writer.write(step.raw)
        await writer.drain()
        return not step.close

    def _deliver(self, endpoint_id: str, request: SimpleNamespace) -> bytes:
        keys = self.keys.get(endpoint_id)
        if keys is None:
            return answer(404)
        problem = check_push_headers(request)  # type: ignore[arg-type]
        vapid = check_vapid(request, self.base, None)  # type: ignore[arg-type]
        if problem or vapid.status:
            self.refusals.append(f"{endpoint_id}: {problem or vapid.message}")
            return answer(400)
        try:
            plaintext = http_ece.decrypt(
                request.body, private_key=keys.private_key, auth_secret=keys.auth
            )
            json.loads(plaintext)
        except Exception as exc:
            self.refusals.append(f"{endpoint_id}: cannot decrypt: {exc}")
            return answer(400)
        self.received[endpoint_id] += 1
        return answer(201)


async def read_request(reader: asyncio.StreamReader) -> SimpleNamespace | None:
    """One HTTP/1.1 request (the sender's: a POST with Content-Length), or None at EOF."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    lines = head.decode("latin-1").split("\r\n")
    _, path, _ = lines[0].split(" ", 2)
    headers: CIMultiDict[str] = CIMultiDict()
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers.add(name.strip(), value.strip())
    body = await reader.readexactly(int(headers.get("Content-Length", "0")))
    return SimpleNamespace(path=path, headers=headers, body=body)
