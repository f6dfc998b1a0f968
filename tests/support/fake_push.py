"""A push service for tests, on loopback, that behaves like a real one.

It hands out endpoints and holds each subscriber's private key and auth secret; every POST is
checked as autopush/FCM check it (VAPID JWT signature against `k=`, `aud`, `exp` within 24 h,
`sub`; TTL, Topic, Content-Encoding headers; size) and then decrypted with http_ece, as the
browser would. Endpoints can be scripted to answer 410, 429 with Retry-After, 500, slowly, or by
dropping the connection. A test passes only when the bytes on the wire are right.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import socket
import struct
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import http_ece
from aiohttp import web
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, utils

from tests.support.helpers import BrowserKeys

TOPIC = re.compile(r"^[A-Za-z0-9_-]{1,32}$")


def b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class Received:
    endpoint_id: str
    payload: dict[str, Any]
    headers: dict[str, str]
    at: float


@dataclass
class Script:
    """Answers an endpoint gives before behaving normally: (status, headers[, body]), 'drop',
    'slow', 'reset' (a TCP reset), 'hang' (no answer for `hang_seconds`, then a close), or
    Raw(bytes) (sent as they are, then the connection closes: garbage aiohttp would not send)."""

    steps: list[Any] = field(default_factory=list)


@dataclass(frozen=True)
class Raw:
    """Bytes a push service sends instead of an answer (then it closes the connection)."""

    data: bytes


@dataclass
class Endpoint:
    keys: BrowserKeys
    bound_key: str | None = None  # like Mozilla v2 endpoints: only this VAPID key is accepted
    gone: bool = False


class LoopbackServer:
    """An aiohttp app on 127.0.0.1 with a free port; `base` is its URL once started."""

    app: web.Application
    base: str = ""
    _runner: web.AppRunner | None = None

    async def start(self):  # type: ignore[no-untyped-def]
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.base = f"http://127.0.0.1:{port}"
        return self

    async def stop(self) -> None:
        if self._runner:
            await self._runner.cleanup()


class FakePushService(LoopbackServer):
    def __init__(self) -> None:
        self.endpoints: dict[str, Endpoint] = {}
        self.received: dict[str, list[Received]] = defaultdict(list)
        self.requests: list[tuple[str, int]] = []  # (endpoint id, status) for every POST
        self.arrivals: list[float] = []  # monotonic time each POST arrived
        self.scripts: dict[str, list[Any]] = defaultdict(list)
        self.vapid_tokens: set[str] = set()
        self.slow_seconds = 2.0
        self.delay = 0.0  # added to every answer: a slow push service
        self.hang_seconds = 2.0  # how long a 'hang' step holds the request
        self.refusals: list[str] = []  # what the checks a browser's service makes refused
        # Called with the endpoint id as each request arrives (a reader leaving mid-send).
        self.on_request: Callable[[str], Awaitable[None]] | None = None
        self.app = web.Application()
        self.app.router.add_post("/push/{id}", self.handle)
        self._counter = 0
        self._waiting: list[tuple[int, asyncio.Future[None]]] = []

    async def arrived(self, count: int) -> None:
        """Wait (at most 30 s) until `count` requests have arrived, answered or not."""
        if len(self.arrivals) >= count:
            return
        future = asyncio.get_running_loop().create_future()
        self._waiting.append((count, future))
        await asyncio.wait_for(future, 30)

    @property
    def origin(self) -> str:
        parts = urlsplit(self.base)
        return f"{parts.scheme}://{parts.netloc}"

    def subscribe(self, bound_key: str | None = None) -> tuple[str, BrowserKeys]:
        """A new browser subscription: (endpoint URL, the browser's keys)."""
        self._counter += 1
        endpoint_id = f"sub{self._counter:06d}"
        keys = BrowserKeys.generate()
        self.endpoints[endpoint_id] = Endpoint(keys, bound_key)
        return f"{self.base}/push/{endpoint_id}", keys

    def script(self, endpoint: str, *steps: Any) -> None:
        self.scripts[endpoint.rsplit("/", 1)[1]].extend(steps)

    def unsubscribe(self, endpoint: str) -> None:
        self.endpoints[endpoint.rsplit("/", 1)[1]].gone = True

    def messages(self, endpoint: str) -> list[dict[str, Any]]:
        return [r.payload for r in self.received[endpoint.rsplit("/", 1)[1]]]

    def statuses(self, endpoint: str) -> list[int]:
        endpoint_id = endpoint.rsplit("/", 1)[1]
        return [status for eid, status in self.requests if eid == endpoint_id]

    # -- the push endpoint ---------------------------------------------------------------
    async def handle(self, request: web.Request) -> web.StreamResponse:
        endpoint_id = request.match_info["id"]
        self.arrivals.append(time.monotonic())
        for count, future in self._waiting:
            if len(self.arrivals) >= count and not future.done():
                future.set_result(None)
        if self.on_request is not None:
            await self.on_request(endpoint_id)
        if self.delay:
            await asyncio.sleep(self.delay)
        response = await self._answer(request, endpoint_id)
        self.requests.append((endpoint_id, response.status))
        return response

    async def _answer(self, request: web.Request, endpoint_id: str) -> web.StreamResponse:
        steps = self.scripts.get(endpoint_id)
        if steps:
            step = steps.pop(0)
            transport = request.transport
            assert transport is not None
            if step == "drop":
                transport.close()
                return web.Response(status=599)
            if step == "reset":
                sock = transport.get_extra_info("socket")
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                transport.abort()
                return web.Response(status=598)
            if step == "hang":
                await asyncio.sleep(self.hang_seconds)
                transport.close()
                return web.Response(status=597)
            if isinstance(step, Raw):
                transport.write(step.data)
                transport.close()
                return web.Response(status=596)
            if step == "slow":
                await asyncio.sleep(self.slow_seconds)
            else:
                status, headers, *body = step  # (status, headers[, raw body])
                scripted = {
                    "code": status,
                    "errno": 999,
                    "error": "Scripted",
                    "message": "scripted",
                }
                return web.Response(
                    status=status,
                    headers=headers,
                    body=body[0] if body else json.dumps(scripted).encode(),
                )
        endpoint = self.endpoints.get(endpoint_id)
        if endpoint is None:
            return push_error(404, 102, "Request did not validate invalid token")
        if endpoint.gone:
            return push_error(410, 106, "Subscription is no longer valid")
        problem = check_push_headers(request)
        if problem:
            self.refusals.append(f"{endpoint_id}: {problem[1]}")
            return push_error(400, problem[0], problem[1])
        vapid = check_vapid(request, self.origin, endpoint.bound_key)
        if vapid.status:
            self.refusals.append(f"{endpoint_id}: {vapid.message}")
            return push_error(vapid.status, 109, vapid.message)
        self.vapid_tokens.add(vapid.token)
        body = await request.read()
        if len(body) > 4096:
            return push_error(413, 104, "Request Entity Too Large")
        try:
            plaintext = http_ece.decrypt(
                body,
                private_key=endpoint.keys.private_key,
                auth_secret=endpoint.keys.auth,
                version="aes128gcm",
            )
            payload = json.loads(plaintext)
        except Exception as exc:  # a browser would drop it: the test must see that
            self.refusals.append(f"{endpoint_id}: cannot decrypt: {exc}")
            return push_error(400, 110, f"cannot decrypt: {exc}")
        self.received[endpoint_id].append(
            Received(endpoint_id, payload, dict(request.headers), time.time())
        )
        return web.Response(status=201, headers={"Location": f"{self.base}/m/{len(body)}"})


def check_push_headers(request: web.Request) -> tuple[int, str] | None:
    """What autopush refuses with 400, as (errno, message); None when the headers are good."""
    ttl = request.headers.get("TTL")
    if ttl is None or not ttl.isdigit():
        return 111, "Missing TTL header"
    topic = request.headers.get("Topic")
    if topic is not None and not TOPIC.match(topic):
        return 113, "Topic must be at most 32 base64url characters"
    if request.headers.get("Content-Encoding") != "aes128gcm":
        return 110, "Unknown Content-Encoding"
    if "Crypto-Key" in request.headers or "Encryption" in request.headers:
        return 110, "aes128gcm forbids Crypto-Key/Encryption headers"
    urgency = request.headers.get("Urgency")
    if urgency is not None and urgency not in ("very-low", "low", "normal", "high"):
        return 112, "Invalid Urgency"
    return None


@dataclass(frozen=True)
class VapidCheck:
    status: int  # 0 when accepted, else 401/403
    message: str
    token: str = ""
    key: str = ""


def check_vapid(request: web.Request, origin: str, bound_key: str | None) -> VapidCheck:
    """Verify `Authorization: vapid t=..., k=...` as a push service does (RFC 8292)."""
    match = re.fullmatch(
        r"vapid t=([\w-]+\.[\w-]+\.[\w-]+),\s*k=([\w-]+)",
        request.headers.get("Authorization", ""),
    )
    if not match:
        return VapidCheck(401, "Missing or malformed vapid Authorization")
    token, key = match.groups()
    head, claims_b64, sig = token.split(".")
    try:
        header = json.loads(b64d(head))
        claims = json.loads(b64d(claims_b64))
        raw_sig = b64d(sig)
        if len(raw_sig) != 64:
            raise InvalidSignature
        public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b64d(key))
        der = utils.encode_dss_signature(
            int.from_bytes(raw_sig[:32], "big"), int.from_bytes(raw_sig[32:], "big")
        )
        public.verify(der, f"{head}.{claims_b64}".encode(), ec.ECDSA(hashes.SHA256()))
    except (ValueError, InvalidSignature, json.JSONDecodeError):
        return VapidCheck(401, "Invalid VAPID signature")
    if header.get("alg") != "ES256" or header.get("typ") != "JWT":
        return VapidCheck(401, "VAPID header must be ES256 JWT")
    if claims.get("aud") != origin:
        return VapidCheck(401, f"VAPID aud {claims.get('aud')!r} is not {origin}")
    exp = claims.get("exp")
    if not isinstance(exp, int) or not time.time() < exp <= time.time() + 24 * 3600:
        return VapidCheck(401, "VAPID exp must be within 24 hours")
    sub = claims.get("sub", "")
    if not (re.fullmatch(r"mailto:[^\s<>]+@[^\s<>]+", sub) or sub.startswith("https://")):
        return VapidCheck(401, "VAPID sub must be a mailto: or https: contact")
    if bound_key is not None and key.rstrip("=") != bound_key.rstrip("="):
        return VapidCheck(403, "VapidPkHashMismatch")
    return VapidCheck(0, "", token, key)


def push_error(status: int, errno: int, message: str) -> web.Response:
    return web.json_response(
        {"code": status, "errno": errno, "error": "push error", "message": message},
        status=status,
    )
