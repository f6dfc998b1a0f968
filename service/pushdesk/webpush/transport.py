"""HTTP/1.1 POSTs to push services over kept-alive connections, one pool per origin.

Why not aiohttp's client here: a push request is one small POST whose answer matters only for
its status, Retry-After and the start of an error body, and the fan-out sends thousands a
second. Measured against nginx on loopback, `ClientSession.post` costs about 200 µs of CPU a
request, aiohttp's connector and response parser alone about 37 µs, and this transport about 20
(README, Performance). The pool is also the per-origin bound on requests in flight, so a
request takes one idle connection and no semaphore. What matters is kept: TLS with certificate
and host name checks (the system's trust store), the guarded resolver (no private addresses),
happy eyeballs, connect and total timeouts, and a connection that failed or was not read to its
end is closed, never reused. The request head is bytes built once per alert and token; per
message only the request line, the length and the body are new.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import math
import re
import socket
import ssl
import time
from collections.abc import Mapping
from typing import cast
from urllib.parse import urlsplit

import aiohappyeyeballs
from aiohappyeyeballs import AddrInfoType
from aiohttp.abc import AbstractResolver

from ..errors import PushdeskError, TransportError
from .http1 import Answer, AnswerReader, ProtocolError

__all__ = [
    "Answer",
    "BadTarget",
    "ConnectFailed",
    "ConnectionLost",
    "ProtocolError",
    "PushTransport",
    "RequestTimedOut",
    "header_block",
    "request_target",
]

# What an endpoint may hold, since its path goes on the request line as it is: visible ASCII
# only, so nothing can end the line or start a header. The API checks endpoints with it when a
# reader subscribes; the sender checks each request target again.
SENDABLE_URL = re.compile(r"[\x21-\x7e]+")
DNS_TTL = 300.0  # seconds an origin's resolved addresses are used for new connections
HAPPY_EYEBALLS_DELAY = 0.25  # RFC 8305's recommended connection attempt delay
# A connection idle longer is closed rather than reused (aiohttp's keep-alive default): between
# alerts, a NAT or firewall may have dropped it without a word, and a request on it would wait
# out the whole timeout before being retried.
MAX_IDLE = 15.0
SWEEP_EVERY = 5.0  # how often idle connections and empty pools are looked for
# Connections to one origin being opened at once: a thousand TLS handshakes at the start of an
# alert would take the CPU from the first readers (and from the API beside the workers).
MAX_OPENING = 32
# Connections a pool opens without asking whether more would help: enough for a push service
# that answers at once (measured, 1,024 requests at once over TLS to a sink answering at once:
# 64 connections sent 6,923 msg/s, 512 sent 5,777).
FLOOR = 64


class BadTarget(PushdeskError, ValueError):
    """The endpoint's path cannot be sent as an HTTP request target."""


class ConnectFailed(TransportError, OSError):
    """No connection to the push service could be opened; `cause` says why."""

    def __init__(self, origin: str, cause: BaseException):
        super().__init__(f"{origin}: {cause or type(cause).__name__}")
        self.cause = cause


class RequestTimedOut(TransportError, TimeoutError):
    """No answer came within the request's time (its connection is closed, never reused)."""


class ConnectionLost(TransportError, ConnectionError):
    """The push service closed the connection before its answer was in."""


def request_target(endpoint: str, origin: str) -> str:
    """The path and query of `endpoint`, whose origin (as `origin_of` gives it) is `origin`."""
    target = endpoint[len(origin) :]
    if not target.startswith("/"):
        target = "/" + target
    if not SENDABLE_URL.fullmatch(target):
        raise BadTarget("endpoint has characters an HTTP request line cannot carry")
    return target


def header_block(headers: Mapping[str, str]) -> bytes:
    """Header lines as they go on the wire; values are ours (checked when the alert was
    prepared), and a line break in any of them is refused rather than sent."""
    lines = []
    for name, value in headers.items():
        if "\r" in value or "\n" in value or "\r" in name or "\n" in name:
            raise ValueError(f"header {name!r} has a line break")
        lines.append(f"{name}: {value}\r\n")
    return "".join(lines).encode("latin-1")


class PushConnection(asyncio.Protocol):
    """One connection to a push service, carrying one request at a time."""

    def __init__(self, pool: OriginPool):
        self._pool = pool
        self._transport: asyncio.Transport | None = None
        self._reader = AnswerReader()
        self._waiter: asyncio.Future[Answer] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self.closed = False
        self.idle_since: float | None = None  # when it went back to the pool; None while in use
        self._sent_at = 0.0

    # asyncio's callbacks
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, hence a cast, not a check
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        waiter = self._waiter
        if waiter is None or waiter.done():
            self.close()  # bytes nobody asked for: this connection is out of step
            return
        try:
            answer = self._reader.feed(data)
        except ProtocolError as exc:
            self._settle(exc)
            return
        if answer is not None:
            self._pool.round_trips.observe(asyncio.get_running_loop().time() - self._sent_at)
            self._settle(answer)

    def eof_received(self) -> bool:
        answer = self._reader.feed_eof()
        if answer is not None:
            self._settle(answer)
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._settle(ConnectionLost("the push service closed the connection"))
        if self.idle_since is not None:
            self.idle_since = None
            self._pool.idle_lost(self)

    # the pool's side
    def exchange(self, request: bytes, timeout: float) -> asyncio.Future[Answer]:
        """Send one request; the future is the answer, or the error that stood in for it."""
        assert self._transport is not None
        loop = asyncio.get_running_loop()
        self._reader.reset()
        waiter = self._waiter = loop.create_future()
        self._timer = loop.call_later(timeout, self._time_out)
        self._transport.write(request)
        self._sent_at = loop.time()
        return waiter

    @property
    def closing(self) -> bool:
        return self._transport is None or self._transport.is_closing()

    @property
    def reusable(self) -> bool:
        return not self.closed and self._reader.reusable

    def close(self) -> None:
        self.closed = True
        if self._transport is not None:
            self._transport.close()
        self._settle(ConnectionLost("connection closed"))

    def _time_out(self) -> None:
        self._timer = None
        self._settle(RequestTimedOut("no answer in time"))
        self.closed = True
        if self._transport is not None:
            self._transport.abort()

    def _settle(self, result: Answer | BaseException) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        waiter, self._waiter = self._waiter, None
        if waiter is None or waiter.done():
            return
        if isinstance(result, BaseException):
            waiter.set_exception(result)
        else:
            waiter.set_result(result)


class Hold:
    """Shared by a transport's pools: while `on`, no request starts (PushTransport.hold)."""

    on = False


class RoundTrips:
    """A pool's request round trips as this process observes them (write to answer read): a
    moving average, and the fastest ever seen (TCP Vegas's base round trip). The pool lives
    while it is used, so a push service that became slower between alerts is measured anew."""

    def __init__(self) -> None:
        self.average = 0.0
        self.base = math.inf

    def observe(self, seconds: float) -> None:
        if self.average:
            self.average += (seconds - self.average) / 16
        else:
            self.average = seconds
        self.base = min(self.base, seconds)

    @property
    def uncongested(self) -> bool:
        """Answers take less than twice the fastest: the wait is the network's, not ours."""
        return self.base == math.inf or self.average < 2 * self.base + 0.001


class OriginPool:
    """The connections to one origin, at most `limit` of them, each carrying one request.

    A request takes an idle connection when there is one, and otherwise waits its turn: for a
    connection handed back by another request, or for leave to open a new one. Leave is given
    while the pool is under its limit, fewer than MAX_OPENING connections are being opened, and
    either the pool is still small (FLOOR) or answers come back about as fast as the fastest
    since the pool was made (`RoundTrips.uncongested`). Against a push service across the
    internet, a round trip is mostly the network's, and more connections mean more requests in
    flight (Little's law: in flight = rate x round trip). When this process is the bottleneck
    (a push service that answers at once, the CPU busy), answers wait for the event loop, the
    round trips it observes grow with the requests in flight, and another connection would only
    add a handshake and a socket to serve: the pool stops growing. The pool is also the
    per-origin bound on requests in flight.
    """

    def __init__(
        self, origin: str, limit: int, ssl_context: ssl.SSLContext | None, hold: Hold | None = None
    ):
        parts = urlsplit(origin)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) origin: {origin}")
        self.origin = origin
        self.hostname = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.ssl = ssl_context if parts.scheme == "https" else None
        self.host_line = f"Host: {parts.netloc}\r\n".encode("ascii")
        self.limit = limit
        self.size = 0  # connections open or opening
        self.opening = 0  # of which being opened
        self.round_trips = RoundTrips()
        self._hold = hold or Hold()
        self._idle: list[PushConnection] = []
        self._open: set[PushConnection] = set()
        self._waiters: collections.deque[asyncio.Future[PushConnection | None]] = (
            collections.deque()
        )
        self.addresses: list[AddrInfoType] = []
        self.resolved_until = 0.0

    @property
    def may_open(self) -> bool:
        """Leave to open one more connection now."""
        return (
            not self._hold.on
            and self.size < self.limit
            and self.opening < MAX_OPENING
            and (self.size < FLOOR or self.round_trips.uncongested)
        )

    @property
    def full(self) -> bool:
        """No idle connection and no leave to open one: a request now waits its turn."""
        return not self.may_open

    def take_idle(self) -> PushConnection | None:
        """The most recently used idle connection, if one is open and was used lately (none
        while the transport is held)."""
        if self._hold.on:
            return None
        idle = self._idle
        now = time.monotonic()
        while idle:
            conn = idle.pop()
            if conn.closed or conn.closing:
                continue  # the push service closed it: its connection_lost frees the slot
            if now - (conn.idle_since or now) > MAX_IDLE:
                conn.close()  # and so are all below it, older still; their slots free alike
                continue
            conn.idle_since = None
            return conn
        return None

    async def wait_turn(self) -> PushConnection | None:
        """An idle connection handed over, or None: a new one may be opened (in a slot this
        pool has counted as opening)."""
        if self.may_open and not self._waiters:
            self._admit_one()
            return None
        waiter: asyncio.Future[PushConnection | None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        self._admit()  # the oldest waiter first
        try:
            return await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.give_back(waiter.result(), reusable=True)
            raise

    def _admit_one(self) -> None:
        self.size += 1
        self.opening += 1

    def _admit(self) -> None:
        """Waiters given leave to open connections, as far as `may_open` allows."""
        while self._waiters and self.may_open:
            waiter = self._waiters.popleft()
            if not waiter.done():
                self._admit_one()
                waiter.set_result(None)  # its turn: it opens a connection in this slot

    def give_back(self, conn: PushConnection | None, reusable: bool) -> None:
        """A request is over: its connection goes to the next waiter, or idle, or is closed.
        `conn` None: a connection this pool gave leave to open, never opened."""
        if conn is None:
            self.opening -= 1
            self._free_slot()
            return
        if reusable and conn.reusable:
            while self._waiters and not self._hold.on:
                waiter = self._waiters.popleft()
                if not waiter.done():
                    waiter.set_result(conn)
                    if self._waiters:
                        self._admit()
                    return
            conn.idle_since = time.monotonic()
            self._idle.append(conn)
            return
        conn.close()
        self._open.discard(conn)
        self._free_slot()

    def resume(self) -> None:
        """The transport's hold is over: idle connections go to waiting requests, and new
        ones are opened for the rest as `may_open` allows."""
        while self._waiters:
            conn = self.take_idle()
            if conn is None:
                break
            waiter = self._waiters.popleft()
            if waiter.done():
                self.give_back(conn, reusable=True)
            else:
                waiter.set_result(conn)
        self._admit()

    def opened(self, conn: PushConnection) -> None:
        self.opening -= 1
        self._open.add(conn)
        self._admit()

    def idle_lost(self, conn: PushConnection) -> None:
        """An idle connection was closed by the push service (its keep-alive ran out)."""
        with contextlib.suppress(ValueError):
            self._idle.remove(conn)
        self._open.discard(conn)
        self._free_slot()

    def _free_slot(self) -> None:
        self.size -= 1
        self._admit()

    def sweep(self, now: float) -> bool:
        """Close idle connections past MAX_IDLE (their connection_lost frees the slots);
        True when the pool holds nothing at all and may be dropped."""
        for conn in self._idle:
            if now - (conn.idle_since or now) > MAX_IDLE:
                conn.close()
        return self.size == 0 and not self._waiters and not self._open

    def close(self) -> None:
        """Closes every connection, idle or carrying a request (which then fails)."""
        for conn in list(self._open):
            conn.close()
        self._open.clear()
        self._idle.clear()


class PushTransport:
    def __init__(
        self,
        resolver: AbstractResolver,
        *,
        per_origin: int,
        connect_timeout: float,
        total_timeout: float,
        ssl_context: ssl.SSLContext | None = None,
    ):
        self.resolver = resolver
        self.per_origin = per_origin
        self.connect_timeout = connect_timeout
        self.total_timeout = total_timeout
        self.ssl_context = ssl_context or default_ssl_context()
        self._pools: dict[str, OriginPool] = {}
        self._sweeper: asyncio.TimerHandle | None = None
        self._hold = Hold()

    def pool(self, origin: str) -> OriginPool:
        pool = self._pools.get(origin)
        if pool is None:
            pool = self._pools[origin] = OriginPool(
                origin, self.per_origin, self.ssl_context, self._hold
            )
            if self._sweeper is None:
                self._sweeper = asyncio.get_running_loop().call_later(SWEEP_EVERY, self._sweep)
        return pool

    def _sweep(self) -> None:
        """Every few seconds while any pool exists: idle connections close after MAX_IDLE even
        when nobody asks their pool again (between alerts), and pools left with no connection
        go, so readers spread over many origins do not leave sockets and pools behind."""
        now = time.monotonic()
        for origin, pool in list(self._pools.items()):
            if pool.sweep(now):
                del self._pools[origin]
        self._sweeper = None
        if self._pools:
            self._sweeper = asyncio.get_running_loop().call_later(SWEEP_EVERY, self._sweep)

    @property
    def pools(self) -> int:
        return len(self._pools)

    def hold(self) -> None:
        """Start no new request until `release` (those on the wire go on and are answered).

        The fan-out holds the transport while it writes (a checkpoint, a shard claimed or
        closed): requests waiting for a connection would otherwise keep the event loop busy,
        and every statement of the transaction (and SQLite's write lock, which the API waits
        for) with it.
        """
        self._hold.on = True

    def release(self) -> None:
        self._hold.on = False
        for pool in list(self._pools.values()):
            pool.resume()

    async def post(self, origin: str, target: str, head: bytes, body: bytes) -> Answer:
        """POST `body` to `target` at `origin`; `head` is the header lines after Host.

        Raises ConnectFailed, ConnectionLost, ProtocolError or TimeoutError when no answer came.
        Waiting for a free connection is not timed out; connecting and the exchange together
        are. The answer's `queued` is how long the request waited for a connection (the clock
        is read only when it had to wait: the pool was full).
        """
        pool = self.pool(origin)
        timeout = self.total_timeout
        queued = 0.0
        conn = pool.take_idle()
        if conn is None:
            if pool.full:
                waiting_since = time.monotonic()
                conn = await pool.wait_turn()
                queued = time.monotonic() - waiting_since
            else:
                conn = await pool.wait_turn()
            if conn is None:
                started = time.monotonic()
                try:
                    conn = await self._connect(pool)
                except BaseException:
                    pool.give_back(None, reusable=False)
                    raise
                timeout -= time.monotonic() - started
        request = b"POST %s HTTP/1.1\r\n%s%sContent-Length: %d\r\n\r\n%s" % (
            target.encode("ascii"),
            pool.host_line,
            head,
            len(body),
            body,
        )
        answered = False
        try:
            answer = await conn.exchange(request, max(timeout, 0.001))
            answered = True
            answer.queued = queued
            return answer
        finally:
            pool.give_back(conn, reusable=answered)

    async def _connect(self, pool: OriginPool) -> PushConnection:
        """A new connection: resolved through the guarded resolver, then happy eyeballs
        (RFC 8305, as aiohttp's connector does), so a host whose IPv6 route is broken still
        connects over IPv4 within a quarter second instead of timing out on its first address."""
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.connect_timeout):
                sock = await aiohappyeyeballs.start_connection(
                    await self._addresses(pool), happy_eyeballs_delay=HAPPY_EYEBALLS_DELAY
                )
                _, conn = await loop.create_connection(
                    lambda: PushConnection(pool),
                    sock=sock,
                    ssl=pool.ssl,
                    server_hostname=pool.hostname if pool.ssl else None,
                )
        except (OSError, TimeoutError) as exc:
            raise ConnectFailed(pool.origin, exc) from exc
        pool.opened(conn)
        return conn

    async def _addresses(self, pool: OriginPool) -> list[AddrInfoType]:
        if time.monotonic() >= pool.resolved_until:
            found = await self.resolver.resolve(pool.hostname, pool.port, socket.AF_UNSPEC)
            if not found:
                raise OSError(f"{pool.hostname} has no address")
            pool.addresses = [
                info
                for r in found
                for info in aiohappyeyeballs.addr_to_addr_infos((r["host"], r["port"])) or []
            ]
            pool.resolved_until = time.monotonic() + DNS_TTL
        return pool.addresses

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        for pool in self._pools.values():
            pool.close()
        self._pools.clear()
        await self.resolver.close()


def default_ssl_context() -> ssl.SSLContext:
    """The system's trust store, host names checked, HTTP/1.1 offered in ALPN."""
    context = ssl.create_default_context()
    context.set_alpn_protocols(["http/1.1"])
    return context
