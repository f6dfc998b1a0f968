"""The push transport against a raw loopback HTTP/1.1 server: what goes on the wire, connection
reuse, and answers a real push service (or a broken proxy in front of it) may give."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import aiohttp
import pytest

from service.webpush.classify import Result
from service.webpush.sender import Sender, Target
from service.webpush.transport import BadTarget, PushTransport, header_block, request_target
from tests.helpers import BrowserKeys
from tests.test_webpush import fast_options, keyring, message  # noqa: F401 - fixture

CREATED = b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n"


@dataclass
class RawServer:
    """Reads each request (head and Content-Length body) and answers what `answer` returns:
    bytes, or a list of bytes to send and seconds to wait in between."""

    answer: Callable[[int], bytes | list[bytes | float]] = lambda n: CREATED
    requests: list[bytes] = field(default_factory=list)
    connections: int = 0
    port: int = 0

    async def start(self) -> RawServer:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                self.requests.append(head + await reader.readexactly(length))
                answer = self.answer(len(self.requests))
                for part in answer if isinstance(answer, list) else [answer]:
                    if isinstance(part, float):
                        await asyncio.sleep(part)
                        continue
                    writer.write(part)
                    await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def stop(self) -> None:
        self.server.close()
        await self.server.wait_closed()


@pytest.fixture
async def raw_server():
    server = await RawServer().start()
    yield server
    await server.stop()


@pytest.fixture
async def transport():
    connector = aiohttp.TCPConnector(limit=0, limit_per_host=8)
    transport = PushTransport(connector, connect_timeout=2, total_timeout=2)
    yield transport
    await transport.close()


HEAD = header_block({"TTL": "60", "Content-Encoding": "aes128gcm"})


async def test_request_bytes_and_keep_alive_reuse(raw_server, transport):
    route = transport.route(raw_server.origin)
    for n in range(20):
        answer = await transport.post(route, f"/push/{n}?a=b", HEAD, b"x" * n)
        assert answer.status == 201 and answer.body == b""
    assert raw_server.connections == 1  # one kept-alive connection for all twenty
    assert (
        raw_server.requests[3]
        == (
            f"POST /push/3?a=b HTTP/1.1\r\nHost: 127.0.0.1:{raw_server.port}\r\nTTL: 60\r\n"
            "Content-Encoding: aes128gcm\r\nContent-Length: 3\r\n\r\nxxx"
        ).encode()
    )


async def test_long_error_body_is_cut_and_a_connection_mid_answer_is_not_reused(
    raw_server, transport
):
    head = b"HTTP/1.1 410 Gone\r\nContent-Length: 5000\r\n\r\n"
    raw_server.answer = lambda n: {
        1: [head + b"e" * 5000],  # all of it arrives: the connection stays usable
        2: [head + b"f" * 2000, 0.5, b"f" * 3000],  # still arriving when we stop reading
    }.get(n, CREATED)
    route = transport.route(raw_server.origin)
    for letter in b"ef":
        gone = await transport.post(route, "/a", HEAD, b"1")
        assert gone.status == 410 and gone.body == bytes([letter]) * 1024
    assert (await transport.post(route, "/b", HEAD, b"2")).status == 201
    # The first answer was whole, so its connection served the second request; the second
    # was cut short, so its connection was closed and the third request opened a new one.
    assert raw_server.connections == 2


async def test_connection_close_and_interim_answers(raw_server, transport):
    raw_server.answer = lambda n: (
        b"HTTP/1.1 100 Continue\r\n\r\n" + CREATED
        if n == 1
        else b"HTTP/1.1 201 Created\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
    )
    route = transport.route(raw_server.origin)
    statuses = [(await transport.post(route, f"/{n}", HEAD, b"b")).status for n in range(3)]
    assert statuses == [201, 201, 201]
    assert raw_server.connections == 2  # after the first "Connection: close", a new one


async def test_an_answer_that_is_not_http_is_retried(raw_server, keyring):  # noqa: F811
    raw_server.answer = lambda n: b"SSH-2.0-OpenSSH_9.2\r\n\r\n" if n == 1 else CREATED
    async with Sender(keyring, fast_options()) as sender:
        keys = BrowserKeys.generate()
        target = Target(f"{raw_server.origin}/push/1", keys.p256dh, keys.auth, keyring.active_id)
        outcome = await sender.send(target, message())
    assert outcome.result is Result.DELIVERED and outcome.attempts == 2


async def test_lower_case_retry_after_is_honoured(raw_server, keyring):  # noqa: F811
    raw_server.answer = lambda n: (
        b"HTTP/1.1 429 Too Many\r\nretry-after: 30\r\nContent-Length: 0\r\n\r\n"
    )
    async with Sender(keyring, fast_options()) as sender:
        keys = BrowserKeys.generate()
        target = Target(f"{raw_server.origin}/push/1", keys.p256dh, keys.auth, keyring.active_id)
        outcome = await sender.send(target, message(), max_wait=1)
    assert outcome.result is Result.RETRY and outcome.retry_at is not None
    assert outcome.attempts == 1 and outcome.retry_at >= time.time() + 25


@pytest.mark.parametrize(
    "endpoint, target",
    [
        ("https://push.example/wpush/v2/abc", "/wpush/v2/abc"),
        ("https://push.example", "/"),
        ("https://push.example?x=1", "/?x=1"),
        ("https://Push.Example:8443/a%20b", "/a%20b"),
    ],
)
def test_request_target_is_the_endpoint_path_as_stored(endpoint, target):
    from service.webpush.vapid import origin_of

    assert request_target(endpoint, origin_of(endpoint)) == target


@pytest.mark.parametrize(
    "endpoint",
    ["https://push.example/a\r\nX-Evil: 1", "https://push.example/a b", "https://push.example/é"],
)
async def test_endpoint_that_would_break_the_request_line_is_never_sent(
    endpoint,
    keyring,  # noqa: F811
):
    from service.webpush.vapid import origin_of

    with pytest.raises(BadTarget):
        request_target(endpoint, origin_of(endpoint))
    async with Sender(keyring, fast_options()) as sender:
        keys = BrowserKeys.generate()
        outcome = await sender.send(
            Target(endpoint, keys.p256dh, keys.auth, keyring.active_id), message()
        )
    assert outcome.result is Result.REJECTED and outcome.attempts == 0
    assert sender.requests == 0


def test_header_block_refuses_line_breaks():
    with pytest.raises(ValueError, match="line break"):
        header_block({"Topic": "a\r\nX-Evil: 1"})
