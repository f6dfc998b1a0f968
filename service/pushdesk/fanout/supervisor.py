"""Worker processes beside the API (`pushdesk serve --workers N`).

Each child is `pushdesk worker` with its own event loop and push transport. The API wakes them
with SIGUSR1 the moment an alert is stored (no poll delay on SQLite; PostgreSQL also NOTIFYs),
and a child that dies is started again, after a pause that grows while it keeps dying young.

SIGUSR1's default action ends a process, so a child is signalled only once the kernel shows it
catches SIGUSR1 (`SigCgt` in /proc): an alert stored while a worker is still starting does not
kill it (it finds the alert on its first poll).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
import time
from pathlib import Path

log = logging.getLogger("pushdesk.supervisor")
RESTART_DELAY = 1.0  # doubled for each exit in a row of a child that died young, up to...
MAX_RESTART_DELAY = 60.0
STEADY_AFTER = 10.0  # a child that ran this long was not failing to start


class WorkerProcesses:
    def __init__(self, count: int, config_file: str | None = None):
        self.count = count
        self.config_file = config_file
        self.children: list[asyncio.subprocess.Process] = []
        self._watch: asyncio.Task[None] | None = None
        self._stopping = False
        self._started: list[float] = []  # when each child was started
        self._young_exits: list[int] = []  # each child's exits in a row before STEADY_AFTER
        self._listening: set[int] = set()  # pids seen catching SIGUSR1

    def _command(self) -> list[str]:
        config = ["--config", self.config_file] if self.config_file else []
        return [sys.executable, "-m", "pushdesk", *config, "worker"]

    async def start(self) -> None:
        self.children = [await self._spawn() for _ in range(self.count)]
        self._started = [time.monotonic()] * self.count
        self._young_exits = [0] * self.count
        self._watch = asyncio.create_task(self._watch_children())
        log.info("started %d worker processes", self.count)

    async def _spawn(self) -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            *self._command(), stdin=asyncio.subprocess.DEVNULL
        )

    async def _watch_children(self) -> None:
        while not self._stopping:
            waiters = {asyncio.ensure_future(c.wait()): n for n, c in enumerate(self.children)}
            done, pending = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            for waiter in pending:
                waiter.cancel()
            if self._stopping:
                return
            for waiter in done:
                n = waiters[waiter]
                lived = time.monotonic() - self._started[n]
                young = self._young_exits[n] + 1 if lived < STEADY_AFTER else 0
                self._young_exits[n] = young
                delay = min(MAX_RESTART_DELAY, RESTART_DELAY * 2 ** max(young - 1, 0))
                log.error(
                    "worker process %d exited with %s after %.1f s; restarting in %.0f s",
                    n,
                    waiter.result(),
                    lived,
                    delay,
                )
                await asyncio.sleep(delay)
                self.children[n] = await self._spawn()
                self._started[n] = time.monotonic()

    def alive(self) -> int:
        return sum(1 for child in self.children if child.returncode is None)

    def ready(self) -> bool:
        """Every child is running, and none is dying young over and over (for /readyz)."""
        now = time.monotonic()
        return all(
            child.returncode is None
            and (self._young_exits[n] == 0 or now - self._started[n] >= STEADY_AFTER)
            for n, child in enumerate(self.children)
        )

    def wake(self) -> None:
        for child in self.children:
            if child.returncode is None and self._catches_wake(child.pid):
                with contextlib.suppress(ProcessLookupError):
                    child.send_signal(signal.SIGUSR1)

    def _catches_wake(self, pid: int) -> bool:
        """Whether `pid` has its SIGUSR1 handler installed (then it keeps it for life)."""
        if pid in self._listening:
            return True
        if catches_signal(pid, signal.SIGUSR1):
            self._listening.add(pid)
            return True
        return False

    async def stop(self, grace: float = 10.0) -> None:
        """SIGTERM: each child finishes its batch in flight, hands its shard back and exits."""
        self._stopping = True
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
        for child in self.children:
            if child.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    child.terminate()
        for child in self.children:
            try:
                await asyncio.wait_for(child.wait(), grace)
            except TimeoutError:
                child.kill()
                await child.wait()


def catches_signal(pid: int, signum: int) -> bool:
    """True when the kernel shows `pid` catching `signum` (Linux's /proc); False when it does
    not, or when that cannot be told (then the worker's own poll finds new work)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    for line in status.splitlines():
        if line.startswith("SigCgt:"):
            return bool(int(line.split()[1], 16) >> (signum - 1) & 1)
    return False
