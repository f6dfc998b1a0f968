"""When a whole push-service origin should wait: a circuit breaker over its recent answers.

One reader's 429 is that reader's (Apple's 429 means "too many to this one device"), and one
reader's 503 may be a bad endpoint: neither pauses the origin. When most recent answers from an
origin are failures or throttles, the service itself is down or asking us to slow down: the
origin opens (every reader waits, no request goes), then lets one probe through; the probe's
answer closes it again, or reopens it for twice as long. An outage thus costs a handful of
requests, not a retry storm of every reader's five attempts.
"""

from __future__ import annotations

import asyncio
import collections
from dataclasses import dataclass, field
from enum import Enum


class Answer(Enum):
    """How one request to an origin went, as the breaker counts it."""

    OK = "ok"  # the service answered sanely (delivered, gone, rejected: all its own word)
    THROTTLED = "throttled"  # 429/406, or a 5xx with Retry-After: slow down
    FAILED = "failed"  # 5xx, timeouts, connections refused or dropped


@dataclass(frozen=True)
class BreakerOptions:
    window: int = 32  # the last this many answers are weighed
    min_answers: int = 8  # no verdict on fewer: one early failure trips nothing
    trip_ratio: float = 0.5  # this share of bad answers opens the origin
    cooldown: float = 1.0  # first pause; doubles on each failed probe
    max_cooldown: float = 60.0


@dataclass
class OriginBreaker:
    """The state of one origin: closed (send), open (wait), or half open (one probe)."""

    options: BreakerOptions = field(default_factory=BreakerOptions)
    open_until: float = 0.0  # while in the future nobody sends
    trips: int = 0  # times opened since it last closed; sets the cooldown
    _recent: collections.deque[Answer] = field(init=False)
    _probe: asyncio.Future[None] | None = None  # set while a probe request is out

    def __post_init__(self) -> None:
        self._recent = collections.deque(maxlen=self.options.window)

    @property
    def cooldown(self) -> float:
        return min(self.options.max_cooldown, self.options.cooldown * 2.0 ** max(self.trips - 1, 0))

    def wait_until(self, now: float) -> float:
        """0 when a request may go now; else the time to come back. A half-open origin
        admits exactly one request (the probe) and holds the rest until its answer."""
        if self.open_until > now:
            return self.open_until
        if self.trips == 0:
            return 0.0
        if self._probe is None or self._probe.done():
            self._probe = asyncio.get_running_loop().create_future()
            return 0.0
        return now + self.cooldown

    @property
    def probing(self) -> asyncio.Future[None] | None:
        """The probe in flight, for a caller that would rather wait for it than come back."""
        probe = self._probe
        return probe if probe is not None and not probe.done() else None

    def record(self, answer: Answer, now: float, pause: float | None = None) -> None:
        """One answer came in. `pause` is the service's Retry-After, if it gave one."""
        if self.trips:  # half open: this was the probe (or a request sent before the trip)
            if answer is Answer.OK:
                self._close()
            elif self.open_until <= now:
                self._open(now, pause)
            return
        self._recent.append(answer)
        if len(self._recent) < self.options.min_answers or answer is Answer.OK:
            return
        bad = sum(1 for a in self._recent if a is not Answer.OK)
        if bad >= self.options.trip_ratio * len(self._recent):
            self._open(now, pause)

    def abandon_probe(self) -> None:
        """The probe ended with no answer to weigh (our own error, a cancel): let the next
        request be the probe rather than leave the origin half open for ever. Only the
        request that was admitted as the probe (while `trips`) calls it."""
        self._settle_probe()

    def _open(self, now: float, pause: float | None) -> None:
        self.trips += 1
        self.open_until = now + max(self.cooldown, pause or 0.0)
        self._recent.clear()
        self._settle_probe()

    def _close(self) -> None:
        self.trips = 0
        self.open_until = 0.0
        self._recent.clear()
        self._settle_probe()

    def _settle_probe(self) -> None:
        if self._probe is not None and not self._probe.done():
            self._probe.set_result(None)
        self._probe = None
