"""Worker processes beside the API (`pushdesk serve --workers N`).

Each child is `pushdesk worker` with its own event loop and ClientSession. The API wakes them
with SIGUSR1 the moment an alert is stored (no poll delay on SQLite; PostgreSQL also NOTIFYs),
and a child that dies is started again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys

log = logging.getLogger("pushdesk.supervisor")
RESTART_DELAY = 1.0


class WorkerProcesses:
    def __init__(self, count: int, config_file: str | None = None):
        self.count = count
        self.config_file = config_file
        self.children: list[asyncio.subprocess.Process] = []
        self._watch: asyncio.Task[None] | None = None
        self._stopping = False

    def _command(self) -> list[str]:
        config = ["--config", self.config_file] if self.config_file else []
        return [sys.executable, "-m", "service", *config, "worker"]

    async def start(self) -> None:
        self.children = [await self._spawn() for _ in range(self.count)]
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
                log.error("worker process %d exited with %s; restarting", n, waiter.result())
                await asyncio.sleep(RESTART_DELAY)
                self.children[n] = await self._spawn()

    def alive(self) -> int:
        return sum(1 for child in self.children if child.returncode is None)

    def wake(self) -> None:
        for child in self.children:
            if child.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    child.send_signal(signal.SIGUSR1)

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
