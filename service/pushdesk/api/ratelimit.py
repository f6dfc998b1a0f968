"""Per-client rate limits for the endpoints strangers can call (subscribing, token checks).

A token bucket per client address, in memory per process (each API node limits on its own).
The client address is the connection's, unless that connection comes from a configured proxy:
then the right-most X-Forwarded-For address that is not itself a trusted proxy, so a client
cannot spoof its way around the limit by sending the header itself.
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections import OrderedDict

from aiohttp import web
from aiohttp.typedefs import Middleware

from ..config import Settings
from .errors import ApiError, Handler

MAX_CLIENTS = 100_000  # buckets kept; the least recently seen are forgotten first


def is_limited(request: web.Request) -> bool:
    path = request.path
    if path == "/api/subscriptions" and request.method == "POST":
        return True
    if path.startswith("/api/subscriptions/"):
        return True
    return path == "/api/events" and request.method == "POST"


class Buckets:
    def __init__(self, capacity: int, period: float):
        self.capacity = capacity
        self.rate = capacity / period  # tokens per second
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def take(self, client: str, now: float | None = None) -> float:
        """0 when allowed; else the seconds until a token is free."""
        now = time.monotonic() if now is None else now
        tokens, last = self._buckets.pop(client, (float(self.capacity), now))
        tokens = min(self.capacity, tokens + (now - last) * self.rate)
        if tokens >= 1:
            self._buckets[client] = (tokens - 1, now)
            wait = 0.0
        else:
            self._buckets[client] = (tokens, now)
            wait = (1 - tokens) / self.rate
        while len(self._buckets) > MAX_CLIENTS:
            self._buckets.popitem(last=False)
        return wait


def _networks(settings: Settings) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    networks = []
    for proxy in settings.trusted_proxies:
        try:
            networks.append(ipaddress.ip_network(proxy, strict=False))
        except ValueError:
            continue  # config validation reports these
    return networks


def client_address(request: web.Request, trusted: list) -> str:
    remote = request.remote or ""

    def trusted_address(address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address.strip())
        except ValueError:
            return False
        return any(ip in network for network in trusted)

    if not trusted or not trusted_address(remote):
        return remote
    hops = [h.strip() for h in request.headers.get("X-Forwarded-For", "").split(",") if h.strip()]
    for hop in reversed(hops):
        if not trusted_address(hop):
            return hop
    return remote


def rate_limit_middleware(settings: Settings) -> Middleware:
    limit = settings.rate_limit
    buckets = Buckets(limit[0], limit[1]) if limit else None
    trusted = _networks(settings)

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if buckets is not None and request.method != "OPTIONS" and is_limited(request):
            wait = buckets.take(client_address(request, trusted))
            if wait > 0:
                seconds = str(max(1, math.ceil(wait)))
                raise ApiError(
                    429,
                    "rate_limited",
                    f"too many requests; try again in {seconds} s",
                    headers={"Retry-After": seconds},
                )
        return await handler(request)

    return middleware
