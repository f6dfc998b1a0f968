"""HTTP/1.1 POSTs to push services on aiohttp's connection pool, without ClientSession's
per-request machinery.

Why: measured on this project's 2-core machine (README, Performance), one
`ClientSession.post` costs about 200 µs of CPU, more than the message's encryption, while
this path costs about 30 µs. What it keeps from aiohttp is what matters for a push request:
the `TCPConnector` (kept-alive pool, per-host limit, TLS with certificate checks, our guarded
resolver, the connect timeout) and aiohttp's HTTP response parser. What it leaves out is what a
push request never uses: cookies, redirects, auth helpers, proxies, compression, streamed or
multipart bodies, tracing. The request head is bytes built once per alert and token; per
message only the request line, the length and the body are new.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from dataclasses import dataclass

import aiohttp
from aiohttp.client_reqrep import ClientRequest
from yarl import URL

# What an endpoint may hold, since its path goes on the request line as it is: visible ASCII
# only, so nothing can end the line or start a header. The API checks endpoints with it when a
# reader subscribes; the sender checks each request target again.
SENDABLE_URL = re.compile(r"[\x21-\x7e]+")
MAX_ERROR_BODY = 1024  # enough of an error answer for its reason; the rest is not read


class BadTarget(ValueError):
    """The endpoint's path cannot be sent as an HTTP request target."""


@dataclass(frozen=True)
class Answer:
    status: int
    headers: Mapping[str, str]  # case-insensitive (aiohttp's CIMultiDictProxy)
    body: bytes  # at most MAX_ERROR_BODY bytes


@dataclass(frozen=True)
class Route:
    """One push-service origin: aiohttp's pool key for it (host, port, TLS) and its Host line."""

    pool_key: ClientRequest
    host_line: bytes


def request_target(endpoint: str, origin: str) -> str:
    """The path and query of `endpoint`, whose origin (as `origin_of` gives it) is `origin`."""
    target = endpoint[len(origin) :]
    if not target.startswith("/"):
        target = "/" + target
    if not SENDABLE_URL.fullmatch(target):
        raise BadTarget("endpoint has characters an HTTP request line cannot carry")
    return target


class PushTransport:
    def __init__(
        self,
        connector: aiohttp.TCPConnector,
        *,
        connect_timeout: float,
        total_timeout: float,
    ):
        self.connector = connector
        self.total_timeout = total_timeout
        self._connect_timeout = aiohttp.ClientTimeout(sock_connect=connect_timeout)
        self._routes: dict[str, Route] = {}

    def route(self, origin: str) -> Route:
        route = self._routes.get(origin)
        if route is None:
            url = URL(origin)
            pool_key = ClientRequest("POST", url, loop=asyncio.get_running_loop())
            host_line = f"Host: {url.raw_authority}\r\n".encode("ascii")
            route = Route(pool_key, host_line)
            self._routes[origin] = route
        return route

    async def post(self, route: Route, target: str, head: bytes, body: bytes) -> Answer:
        """POST `body` to `target` at `route`; `head` is the header lines after Host.

        Raises aiohttp.ClientError, OSError or TimeoutError when no answer came; a connection
        that failed or whose answer was not read to its end is closed, never pooled again.
        """
        async with asyncio.timeout(self.total_timeout):
            conn = await self.connector.connect(route.pool_key, [], self._connect_timeout)
            try:
                answer = await self._exchange(conn, route, target, head, body)
            except BaseException:
                conn.close()
                raise
            conn.release()  # aiohttp closes it instead when the answer asked or was not read
            return answer

    async def _exchange(
        self,
        conn: aiohttp.connector.Connection,
        route: Route,
        target: str,
        head: bytes,
        body: bytes,
    ) -> Answer:
        protocol, transport = conn.protocol, conn.transport
        if protocol is None or transport is None:
            raise aiohttp.ServerDisconnectedError()
        protocol.set_response_params(read_until_eof=False, auto_decompress=False)
        transport.write(
            b"POST %s HTTP/1.1\r\n%s%sContent-Length: %d\r\n\r\n%s"
            % (target.encode("ascii"), route.host_line, head, len(body), body)
        )
        while True:
            message, payload = await protocol.read()
            if not 100 <= message.code < 200:  # skip interim answers
                break
        answer = b""
        while len(answer) < MAX_ERROR_BODY and not payload.at_eof():
            answer += await payload.read(MAX_ERROR_BODY - len(answer))
        return Answer(message.code, message.headers, answer)

    async def close(self) -> None:
        await self.connector.close()


def header_block(headers: Mapping[str, str]) -> bytes:
    """Header lines as they go on the wire; values are ours (checked when the alert was
    prepared), and a line break in any of them is refused rather than sent."""
    lines = []
    for name, value in headers.items():
        if "\r" in value or "\n" in value or "\r" in name or "\n" in name:
            raise ValueError(f"header {name!r} has a line break")
        lines.append(f"{name}: {value}\r\n")
    return "".join(lines).encode("latin-1")
