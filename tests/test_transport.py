"""The push transport against a raw loopback HTTP/1.1 server: what goes on the wire, connection
reuse, and answers a real push service (or a broken proxy in front of it) may give."""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import pytest
from aiohttp.abc import AbstractResolver, ResolveResult

from pushdesk.bench.tls import self_signed_certificate
from pushdesk.webpush.classify import Result
from pushdesk.webpush.sender import GuardedResolver, Sender, Target
from pushdesk.webpush.transport import (
    FLOOR,
    BadTarget,
    PushTransport,
    RoundTrips,
    header_block,
    request_target,
)
from tests.support.helpers import BrowserKeys
from tests.support.sending import fast_options, message

CREATED = b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n"
CLOSE = "close"  # in an answer list: the server hangs up there


@dataclass
class RawServer:
    """Reads each request (head and Content-Length body) and answers what `answer` returns:
    bytes, or a list of bytes to send, seconds to wait in between, and CLOSE to hang up."""

    answer: Callable[[int], bytes | list[bytes | float | str]] = lambda n: CREATED
    before_answer: Callable[[int], Awaitable[None]] | None = None
    requests: list[bytes] = field(default_factory=list)
    handlers: set[asyncio.Task[None]] = field(default_factory=set)
    connections: int = 0
    port: int = 0
    scheme: str = "http"

    async def start(self, tls: ssl.SSLContext | None = None) -> RawServer:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=tls)
        self.scheme = "https" if tls else "http"
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    @property
    def origin(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        task = asyncio.current_task()
        assert task is not None
        self.handlers.add(task)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                self.requests.append(head + await reader.readexactly(length))
                if self.before_answer is not None:
                    await self.before_answer(len(self.requests))
                answer = self.answer(len(self.requests))
                for part in answer if isinstance(answer, list) else [answer]:
                    if part == CLOSE:
                        return
                    if isinstance(part, float):
                        await asyncio.sleep(part)
                        continue
                    writer.write(part)
                    await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self.handlers.discard(task)
            writer.close()

    async def stop(self) -> None:
        self.server.close()
        for handler in list(self.handlers):
            handler.cancel()
        await self.server.wait_closed()


@pytest.fixture
async def raw_server():
    server = await RawServer().start()
    yield server
    await server.stop()


def loopback_transport(per_origin: int = 8, total_timeout: float = 2) -> PushTransport:
    return PushTransport(
        GuardedResolver(allow_loopback=True),
        per_origin=per_origin,
        connect_timeout=2,
        total_timeout=total_timeout,
    )


async def post_together(origin: str, count: int, per_origin: int) -> list[int]:
    """`count` requests at once through a transport of at most `per_origin` connections."""
    transport = loopback_transport(per_origin, total_timeout=5)
    try:
        answers = await asyncio.gather(
            *(transport.post(origin, f"/{n}", HEAD, b"x") for n in range(count))
        )
    finally:
        await transport.close()
    return [answer.status for answer in answers]


@pytest.fixture
async def transport():
    transport = loopback_transport()
    yield transport
    await transport.close()


HEAD = header_block({"TTL": "60", "Content-Encoding": "aes128gcm"})


async def test_request_bytes_and_keep_alive_reuse(raw_server, transport):
    route = raw_server.origin
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
    route = raw_server.origin
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
    route = raw_server.origin
    statuses = [(await transport.post(route, f"/{n}", HEAD, b"b")).status for n in range(3)]
    assert statuses == [201, 201, 201]
    assert raw_server.connections == 2  # after the first "Connection: close", a new one


async def test_an_answer_that_is_not_http_is_retried(raw_server, keyring):
    raw_server.answer = lambda n: b"SSH-2.0-OpenSSH_9.2\r\n\r\n" if n == 1 else CREATED
    async with Sender(keyring, fast_options()) as sender:
        keys = BrowserKeys.generate()
        target = Target(f"{raw_server.origin}/push/1", keys.p256dh, keys.auth, keyring.active_id)
        outcome = await sender.send(target, message())
    assert outcome.result is Result.DELIVERED and outcome.attempts == 2


async def test_lower_case_retry_after_is_honoured(raw_server, keyring):
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
    from pushdesk.webpush.vapid import origin_of

    assert request_target(endpoint, origin_of(endpoint)) == target


@pytest.mark.parametrize(
    "endpoint",
    ["https://push.example/a\r\nX-Evil: 1", "https://push.example/a b", "https://push.example/é"],
)
async def test_endpoint_that_would_break_the_request_line_is_never_sent(
    endpoint,
    keyring,
):
    from pushdesk.webpush.vapid import origin_of

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


async def test_a_request_with_no_answer_times_out_and_frees_its_connection(raw_server):
    raw_server.answer = lambda n: [30.0] if n == 1 else CREATED  # the first one never answers
    transport = loopback_transport(per_origin=1, total_timeout=0.3)
    try:
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            await transport.post(raw_server.origin, "/slow", HEAD, b"1")
        assert time.monotonic() - started < 2
        # The only slot was freed and the silent connection dropped: a new one answers.
        assert (await transport.post(raw_server.origin, "/next", HEAD, b"2")).status == 201
        assert raw_server.connections == 2
    finally:
        await transport.close()


async def test_a_connection_the_push_service_closed_while_idle_is_not_used(raw_server, transport):
    # The first answer says nothing of closing, then the server hangs up (its keep-alive
    # timeout ran out while the connection sat idle in our pool).
    raw_server.answer = lambda n: [CREATED, CLOSE] if n == 1 else CREATED
    assert (await transport.post(raw_server.origin, "/a", HEAD, b"1")).status == 201
    await asyncio.sleep(0.05)
    assert (await transport.post(raw_server.origin, "/b", HEAD, b"2")).status == 201
    assert raw_server.connections == 2


async def test_requests_in_flight_to_one_origin_stay_within_the_pool(raw_server):
    in_flight = peak = 0

    async def slow_answer(n: int) -> None:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.02)
        in_flight -= 1

    raw_server.before_answer = slow_answer
    assert await post_together(raw_server.origin, 20, per_origin=3) == [201] * 20
    assert peak == 3 and raw_server.connections == 3


def self_signed(tmp_path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A server context with a certificate for 127.0.0.1, and a client context trusting it."""
    cert_file, key_file = self_signed_certificate(tmp_path)
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert_file, key_file)
    client = ssl.create_default_context(cafile=str(cert_file))
    return server, client


async def test_tls_checks_the_push_services_certificate(tmp_path, keyring):
    server_tls, trusting = self_signed(tmp_path)
    server = await RawServer().start(tls=server_tls)
    keys = BrowserKeys.generate()
    target = Target(f"{server.origin}/push/1", keys.p256dh, keys.auth, keyring.active_id)
    try:
        async with Sender(keyring, fast_options(ssl_context=trusting)) as sender:
            delivered = await sender.send(target, message())
        async with Sender(keyring, fast_options(max_attempts=1)) as sender:
            refused = await sender.send(target, message())  # the system's trust store
    finally:
        await server.stop()
    assert delivered.result is Result.DELIVERED
    assert server.requests[0].startswith(b"POST /push/1 HTTP/1.1\r\n")
    assert refused.result is Result.FAILED and "CERTIFICATE_VERIFY_FAILED" in refused.reason
    assert len(server.requests) == 1


def test_the_transport_works_on_uvloop_as_the_workers_run_it():
    """Workers run on uvloop, whose transports are not asyncio's classes."""
    import uvloop

    async def exchange() -> tuple[list[int], int]:
        server = await RawServer().start()
        try:
            statuses = await post_together(server.origin, 6, per_origin=2)
        finally:
            await server.stop()
        return statuses, server.connections

    statuses, connections = uvloop.run(exchange())
    assert statuses == [201] * 6 and connections == 2


class ListResolver(AbstractResolver):
    """Resolves every name to the given loopback addresses, in this order."""

    def __init__(self, hosts: list[str]):
        self.hosts = hosts

    async def resolve(self, host, port=0, family=socket.AF_INET):  # type: ignore[override]
        return [
            ResolveResult(hostname=host, host=h, port=port, family=socket.AF_INET, proto=0, flags=0)
            for h in self.hosts
        ]

    async def close(self) -> None:
        pass


async def test_an_address_that_never_answers_does_not_stall_the_connect(raw_server):
    """Happy eyeballs: the first address swallows connection attempts (its accept queue is
    full), the second answers; the request goes through the second well within the connect
    timeout instead of spending all of it on the first."""
    silent = socket.socket()
    silent.bind(("127.0.0.2", raw_server.port))
    silent.listen(0)
    # A backlog of 0 holds one connection; with it taken, the kernel drops further SYNs.
    queued = [socket.create_connection(("127.0.0.2", raw_server.port), timeout=1)]
    transport = PushTransport(
        ListResolver(["127.0.0.2", "127.0.0.1"]), per_origin=2, connect_timeout=3, total_timeout=5
    )
    try:
        started = time.monotonic()
        answer = await transport.post(f"http://push.test:{raw_server.port}", "/a", HEAD, b"1")
        elapsed = time.monotonic() - started
    finally:
        await transport.close()
        for sock in [silent, *queued]:
            sock.close()
    assert answer.status == 201 and raw_server.requests[0].startswith(b"POST /a HTTP/1.1")
    assert elapsed < 2  # not the 3 s connect timeout


async def test_a_connection_idle_too_long_is_not_reused(raw_server, transport, monkeypatch):
    """Between alerts a middlebox may have dropped an idle connection silently: past MAX_IDLE
    a new one is opened rather than risking a request that waits out the timeout."""
    from pushdesk.webpush import transport as module

    monkeypatch.setattr(module, "MAX_IDLE", 0.05)
    for path in ("/a", "/b"):  # back to back: one connection
        assert (await transport.post(raw_server.origin, path, HEAD, b"1")).status == 201
    await asyncio.sleep(0.1)
    statuses = await asyncio.gather(
        *(transport.post(raw_server.origin, f"/{n}", HEAD, b"2") for n in range(3))
    )
    assert statuses and all(answer.status == 201 for answer in statuses)
    assert raw_server.connections == 4  # the stale one closed, three new ones


async def test_idle_connections_close_even_when_their_pool_is_not_used_again(
    raw_server, transport, monkeypatch
):
    """Between alerts nobody asks an origin's pool again: the sweep still closes its idle
    connections after MAX_IDLE (the push service sees them end) and drops the empty pool, so
    readers spread over many origins leave no sockets or pools behind."""
    from pushdesk.webpush import transport as module

    monkeypatch.setattr(module, "MAX_IDLE", 0.05)
    monkeypatch.setattr(module, "SWEEP_EVERY", 0.05)
    assert (await transport.post(raw_server.origin, "/a", HEAD, b"1")).status == 201
    assert raw_server.handlers and transport.pools == 1
    for _ in range(100):
        if not raw_server.handlers and transport.pools == 0:
            break
        await asyncio.sleep(0.02)
    assert not raw_server.handlers  # the server saw the connection end
    assert transport.pools == 0
    assert (await transport.post(raw_server.origin, "/b", HEAD, b"2")).status == 201


def test_one_error_family():
    """Callers catch by meaning: everything pushdesk raises on purpose is a PushdeskError, and
    every way a push request can end without a usable answer is a TransportError (which keeps
    the standard base it has, so `except OSError` or `except TimeoutError` still work)."""
    from pushdesk.errors import PushdeskError, TransportError
    from pushdesk.webpush.transport import (
        ConnectFailed,
        ConnectionLost,
        ProtocolError,
        RequestTimedOut,
    )

    assert issubclass(TransportError, PushdeskError)
    for error, standard in (
        (ConnectFailed, OSError),
        (ConnectionLost, ConnectionError),
        (ProtocolError, Exception),
        (RequestTimedOut, TimeoutError),
    ):
        assert issubclass(error, TransportError) and issubclass(error, standard)


async def test_a_held_transport_starts_no_request_until_released(raw_server):
    """The fan-out holds the transport while it writes a checkpoint: requests waiting for a
    connection wait on, the ones on the wire are answered, and all go once released."""
    transport = loopback_transport(per_origin=2, total_timeout=5)
    try:
        first = await transport.post(raw_server.origin, "/0", HEAD, b"x")  # a pool, warm
        transport.hold()
        waiting = [
            asyncio.ensure_future(transport.post(raw_server.origin, f"/{n}", HEAD, b"x"))
            for n in range(1, 6)
        ]
        await asyncio.sleep(0.2)
        assert len(raw_server.requests) == 1 and not any(w.done() for w in waiting)
        transport.release()
        answers = await asyncio.gather(*waiting)
    finally:
        await transport.close()
    assert first.status == 201 and [a.status for a in answers] == [201] * 5
    assert len(raw_server.requests) == 6 and raw_server.connections <= 2


def test_round_trips_tell_the_networks_wait_from_ours():
    trips = RoundTrips()
    assert trips.uncongested  # nothing measured yet: connections may be opened
    for seconds in (0.150, 0.152, 0.149, 0.160, 0.155):
        trips.observe(seconds)  # a push service 150 ms away: the wait is the network's
    assert trips.uncongested
    busy = RoundTrips()
    busy.observe(0.0003)  # answered at once, while the loop was quiet
    for _ in range(40):
        busy.observe(0.012)  # then answers wait for a busy event loop
    assert not busy.uncongested


async def test_a_pool_whose_answers_wait_for_us_stops_at_the_floor(raw_server):
    """Answers taking far longer than the fastest seen mean the process is the bottleneck:
    the pool opens no connection beyond FLOOR, however many requests wait."""

    async def slow_answer(n: int) -> None:
        await asyncio.sleep(0.02)

    raw_server.before_answer = slow_answer
    transport = loopback_transport(per_origin=FLOOR * 3, total_timeout=5)
    try:
        pool = transport.pool(raw_server.origin)
        pool.round_trips.observe(0.0001)  # the fastest answer ever: 0.1 ms
        for _ in range(40):
            pool.round_trips.observe(0.02)  # and lately 20 ms, as a busy loop would see
        answers = await asyncio.gather(
            *(transport.post(raw_server.origin, f"/{n}", HEAD, b"x") for n in range(FLOOR * 3))
        )
    finally:
        await transport.close()
    assert [a.status for a in answers] == [201] * FLOOR * 3
    assert raw_server.connections == FLOOR
    assert await post_together(raw_server.origin, FLOOR * 3, FLOOR * 3) == [201] * FLOOR * 3
    assert raw_server.connections - FLOOR > FLOOR  # a new pool, answers at 20 ms: it grows
