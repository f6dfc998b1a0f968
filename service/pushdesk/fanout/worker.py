"""The worker loop: plan → claim a shard → stream readers → policy → send → checkpoint.

A checkpoint writes a batch's outcomes and advances the shard's cursor in one transaction, so a
worker that dies repeats at most the batches it had in flight (a shard's, up to
`batches_in_flight`, and the last ones of the shard before it, finishing in the background);
`Topic` and the notification `tag` are the alert id, so the push service or the browser
collapses such a repeat.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import enum
import functools
import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import NamedTuple, TypeVar

from ..engagement import bucket_ms
from ..errors import PushdeskError
from ..store import TRANSIENT_ERRORS, Store
from ..store.models import (
    Alert,
    AlertStatus,
    Checkpoint,
    Count,
    DueDelivery,
    ReaderOutcome,
    ReaderResult,
    Recipient,
    Settlement,
    Shard,
    tally,
)
from ..webpush.classify import Result
from ..webpush.payload import Message
from ..webpush.sender import Outcome, PreparedMessage, Sender, Target, prepare
from . import planner
from .policy import Action, AlertPolicy, decide, local_day

log = logging.getLogger("pushdesk.fanout")
T = TypeVar("T")
# A worker's first batch of an alert is small and its first message goes out alone: a smaller
# read, and no other lane's connect or encryption ahead of it on a cold connection pool (time
# to first request, measured with `pushdesk bench`: 250 ms with all lanes at once at 100,000
# readers). Costs one round trip per alert and worker.
FIRST_BATCH = 64
PERSIST_ATTEMPTS = 12  # about 40 s of retries before the shard is left to its lease

NOT_SENT = Outcome(Result.FAILED, "not sent")  # a placeholder no finished send leaves behind
# How each engine result is counted on the alert.
RESULT_COUNT = {
    Result.DELIVERED: Count.DELIVERED,
    Result.GONE: Count.REMOVED,
    Result.VAPID_REJECTED: Count.FAILED,
    Result.TOO_LARGE: Count.FAILED,
    Result.REJECTED: Count.FAILED,
    Result.FAILED: Count.FAILED,
}
# What the store records against a reader for each final result but delivered.
READER_RESULT = {
    Result.GONE: ReaderResult.GONE,
    Result.VAPID_REJECTED: ReaderResult.VAPID_REJECTED,
    Result.TOO_LARGE: ReaderResult.TOO_LARGE,
    Result.REJECTED: ReaderResult.REJECTED,
    Result.FAILED: ReaderResult.FAILED,
}


def reader_outcome(subscription_id: int, outcome: Outcome) -> ReaderOutcome:
    """A final, undelivered outcome as the store records it against the reader."""
    return ReaderOutcome(subscription_id, READER_RESULT[outcome.result], outcome.reason)


@dataclass
class WorkerOptions:
    batch_size: int = 500
    concurrency: int = 1024  # lanes a batch may use at once
    batches_in_flight: int = 4  # a shard's batches sent at once (read ahead, closed in order)
    lease: float = 30.0
    poll_interval: float = 0.5
    inline_wait: float = 2.0  # longer retries are handed back and scheduled as deferrals
    due_batch: int = 200
    shard_width: int = planner.SHARD_WIDTH


@dataclass
class AlertContext:
    """What is the same for every reader of one alert: built once per worker."""

    alert: Alert
    message: PreparedMessage
    policy: AlertPolicy
    started: bool = False  # this worker has sent a batch of this alert


class Unsendable(PushdeskError):
    """An alert whose message cannot be built: its readers are closed with this reason."""


class Job(NamedTuple):
    """One reader to send one alert to: what a lane takes."""

    recipient: Recipient
    ctx: AlertContext
    prior_attempts: int = 0


class ShardEnd(enum.Enum):
    """How a worker's turn on a shard ended."""

    READ = "read"  # every reader read and checkpointed: the shard may be finished
    STOPPED = "stopped"  # the worker is stopping: the shard goes back for another to go on
    LEFT = "left"  # cancelled, or the lease went to another worker: nothing more to do


class BatchesInFlight:
    """A shard's batches being sent, oldest first, at most `limit` at once.

    The worker starts a batch when `may_start` (the newest batch has handed all its readers to
    lanes, and there is room), and takes the finished ones in order from `finished`.
    """

    def __init__(self, limit: int):
        self.limit = limit
        self.batches: collections.deque[asyncio.Task[Checkpoint]] = collections.deque()
        self._progress = asyncio.Event()
        self._newest = 0  # the generation of the newest batch
        self._newest_drained = True

    def may_start(self) -> bool:
        return self._newest_drained and len(self.batches) < self.limit

    def start(self, work: Callable[[Callable[[], None]], Awaitable[Checkpoint]]) -> None:
        """Run `work(drained)`; it calls `drained()` once its last reader is in a lane."""
        self._newest += 1
        self._newest_drained = False
        generation = self._newest

        def drained() -> None:
            if generation == self._newest:
                self._newest_drained = True
                self._progress.set()

        batch = work(drained)  # its arguments bound now, not when the task first runs

        async def run() -> Checkpoint:
            try:
                return await batch
            finally:
                drained()

        task = asyncio.ensure_future(run())
        task.add_done_callback(lambda _: self._progress.set())
        self.batches.append(task)

    async def finished(self) -> list[Checkpoint]:
        """Waits for progress (a batch done, or the newest drained); the batches finished at
        the front, in order. A batch that failed raises its error here, in its turn."""
        if not (self.batches and self.batches[0].done()):
            await self._progress.wait()
        self._progress.clear()
        done: list[Checkpoint] = []
        while self.batches and self.batches[0].done():
            if done and self.batches[0].exception() is not None:
                break  # those before it are written first
            done.append(self.batches.popleft().result())
        return done

    async def abandon(self) -> None:
        """Cancel the batches still in flight and wait for them to end."""
        for task in self.batches:
            task.cancel()
        await asyncio.gather(*self.batches, return_exceptions=True)
        self.batches.clear()


def new_owner_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class FanoutWorker:
    def __init__(
        self,
        store: Store,
        sender: Sender,
        options: WorkerOptions | None = None,
        owner: str | None = None,
        clock: Callable[[], float] = time.time,
        refresh_keys: Callable[[], Awaitable[object]] | None = None,
    ):
        self.refresh_keys = refresh_keys  # picks up VAPID keys rotated by another process
        self.clock = clock  # tests move it forward to reach the end of quiet hours
        self.store = store
        self.sender = sender
        self.options = options or WorkerOptions()
        self.owner = owner or new_owner_id()
        self.wake_event = asyncio.Event()
        self._listening = False
        self._contexts: dict[int, AlertContext] = {}
        self._tail: asyncio.Future[None] | None = None  # a shard's last batches, finishing
        # Cleared while the fan-out writes (`_paused`): lanes start no new send until it is
        # committed. A busy event loop would otherwise stretch each statement of the
        # transaction by a loop turn of a thousand lanes, and the API's writes wait out the lock.
        self._sending = asyncio.Event()
        self._sending.set()
        self._pauses = 0  # writes under way that hold the sending

    def wake(self) -> None:
        """A new alert was stored: start now rather than at the next poll."""
        self.wake_event.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Work until `stop` is set; then finish the batch in flight and hand the shard back."""
        log.info("worker %s started", self.owner)
        try:
            self.sender.warm_up()
        except Exception:  # an optimisation only: the first reader pays for it instead
            log.exception("worker %s: warm-up failed", self.owner)
        while not stop.is_set():
            if not self._listening:
                await self._listen()
            try:
                idle = 0.0 if await self.run_once(stop) else await self._idle_wait()
            except asyncio.CancelledError:
                raise
            except Exception:  # the database may be restarting: keep going, nothing is lost
                log.exception("worker %s: error; retrying shortly", self.owner)
                idle = 1.0
            if idle:
                await _wait_either(stop, self.wake_event, idle)
            self.wake_event.clear()
        try:
            await self._drain_tail()
        except Exception:
            log.exception("worker %s: error while finishing its last shard", self.owner)
        log.info("worker %s stopped", self.owner)

    async def _listen(self) -> None:
        """Be told of new alerts. Until that works (the database is restarting, or closing
        under us) the worker polls every `poll_interval`, and tries again each round."""
        try:
            await self.store.listen_for_alerts(self.wake)
        except Exception as exc:
            log.warning("worker %s: not told of new alerts yet (%s); polling", self.owner, exc)
            return
        self._listening = True

    async def _idle_wait(self) -> float:
        due = await self.store.next_due_time()
        wait = self.options.poll_interval
        if due is not None:
            wait = min(wait, max(0.0, due - self.clock()))
        return wait

    async def run_once(self, stop: asyncio.Event | None = None) -> bool:
        """One unit of work (plan an alert, work a shard, or send due deliveries).

        A shard's work returns once its readers are all read; its last batches finish in the
        background (`_tail`) while the next shard starts, so the pipeline does not drain at
        every shard's end. At most one shard finishes so at a time.
        """
        if self._tail is not None and self._tail.done():
            await self._drain_tail()  # its error, if any, is this round's
        if not await self.store.has_work(self.clock()):
            return await self._drain_tail()
        if self.refresh_keys is not None:
            await self.refresh_keys()
        if await self._paused(self.store.plan_next_alert(self._split)):
            return True
        shard = await self._paused(self.store.claim_shard(self.owner, self.options.lease))
        if shard is not None:
            await self._start_shard(shard, stop)
            return True
        if await self._drain_tail():
            return True
        return await self.work_due() > 0

    async def _start_shard(self, shard: Shard, stop: asyncio.Event | None) -> None:
        """Work `shard` until its readers are all read; the rest becomes the tail."""
        read = asyncio.get_running_loop().create_future()
        task = asyncio.ensure_future(self.work_shard(shard, stop, read))
        await asyncio.wait([task, read], return_when=asyncio.FIRST_COMPLETED)
        await self._drain_tail()
        if task.done():
            task.result()
        else:
            self._tail = task

    async def _drain_tail(self) -> bool:
        """Wait for the shard finishing in the background, if any; True if there was one."""
        tail, self._tail = self._tail, None
        if tail is None:
            return False
        await tail
        return True

    def _split(self, lo: int, hi: int) -> list[tuple[int, int]]:
        return planner.split(lo, hi, self.options.shard_width)

    async def run_until_idle(self) -> None:
        """Work until nothing is left that is due now (tests and one-shot runs)."""
        while await self.run_once():
            pass

    # -- shards -------------------------------------------------------------------------
    async def work_shard(
        self,
        shard: Shard,
        stop: asyncio.Event | None = None,
        read: asyncio.Future[None] | None = None,
    ) -> None:
        """Send a shard's readers and close it; `read` is set once every reader is read."""
        read = read or asyncio.get_running_loop().create_future()
        try:
            await self._work_shard(shard, stop, read)
        finally:
            if not read.done():
                read.set_result(None)

    async def _work_shard(
        self, shard: Shard, stop: asyncio.Event | None, read: asyncio.Future[None]
    ) -> None:
        try:
            ctx = await self._context(shard.alert_id)
        except Unsendable as exc:
            closing = Checkpoint(shard.id, shard.alert_id, shard.hi, error=str(exc))
            await self._persist(
                lambda: self.store.checkpoint(closing, self.owner, self.options.lease),
                f"the checkpoint of shard {shard.id}",
            )
            ctx = None
        if ctx is None:
            await self._paused(self.store.finish_shard(shard, self.owner))
            return
        ending = await self._work_batches(ctx, shard, stop, read)
        if ending is ShardEnd.STOPPED:
            await self._paused(self.store.release_shard(shard, self.owner))
        elif ending is ShardEnd.READ and await self._paused(
            self.store.finish_shard(shard, self.owner)
        ):
            log.info(
                "worker %s finished shard %s",
                self.owner,
                shard.id,
                extra={"alert": ctx.alert.public_id},
            )

    async def _work_batches(
        self,
        ctx: AlertContext,
        shard: Shard,
        stop: asyncio.Event | None,
        read: asyncio.Future[None],
    ) -> ShardEnd:
        """Send a shard's readers batch by batch, the batches overlapping: the next one is read
        and started as soon as the newest has handed its last reader to a lane, so a push
        service's round trip and the batch's slowest readers do not stall the others (up to
        `batches_in_flight` at once). Checkpoints are written in the order the batches were
        read, so the cursor never passes a reader whose outcome is not written."""
        flight = BatchesInFlight(self.options.batches_in_flight)
        cursor = shard.cursor
        reading = True
        stopped = cancelled = False
        try:
            while reading or flight.batches:
                if not reading and not read.done():
                    read.set_result(None)
                if reading and flight.may_start():
                    head_start = not ctx.started
                    ctx.started = True
                    size = FIRST_BATCH if head_start else self.options.batch_size
                    batch = await self.store.recipients(ctx.alert.topics, cursor, shard.hi, size)
                    reading = len(batch) == size
                    if batch:
                        cursor = batch[-1].id
                        flight.start(
                            functools.partial(self._work_batch, ctx, shard, batch, head_start)
                        )
                    continue
                for checkpoint in await flight.finished():
                    status = await self._paused(self._checkpoint(ctx, checkpoint))
                    if status is None:
                        log.warning(
                            "worker %s lost the lease on shard %s",
                            self.owner,
                            shard.id,
                            extra={"alert": ctx.alert.public_id},
                        )
                        return ShardEnd.LEFT
                    if status == AlertStatus.CANCELLED:
                        reading, cancelled = False, True  # the batches sent are still written
                if reading and stop is not None and stop.is_set():
                    reading, stopped = False, True
        finally:
            await flight.abandon()  # only after a failure or the end of the lease are any left
        if cancelled:
            return ShardEnd.LEFT
        return ShardEnd.STOPPED if stopped else ShardEnd.READ

    async def _paused(self, write: Awaitable[T]) -> T:
        """`write` with no new send starting meanwhile, neither from the lanes nor from the
        requests waiting for a connection (those in flight go on). Every write the fan-out
        makes while it may be sending goes through here: with a shard finishing in the
        background, claiming or closing one happens while another's lanes are busy."""
        self._pauses += 1
        self._sending.clear()
        self.sender.hold()
        try:
            return await write
        finally:
            self._pauses -= 1
            if not self._pauses:  # two shards' writes may overlap: the last one resumes
                self.sender.release()
                self._sending.set()

    async def _checkpoint(self, ctx: AlertContext, cp: Checkpoint) -> str | None:
        """Write a batch's outcomes. Messages went out: if the write fails for a reason that
        retrying will not mend (a bug, a constraint), the batch is still closed, with its
        counts only, rather than left to be sent again every time the lease runs out."""

        def write(checkpoint: Checkpoint) -> Callable[[], Awaitable[str | None]]:
            return lambda: self.store.checkpoint(checkpoint, self.owner, self.options.lease)

        what = f"the checkpoint of shard {cp.shard_id}"
        try:
            return await self._persist(write(cp), what)
        except TRANSIENT_ERRORS:
            raise
        except Exception as exc:
            log.exception(
                "worker %s: %s cannot be written whole; writing its counts only",
                self.owner,
                what,
                extra={"alert": ctx.alert.public_id},
            )
            return await self._persist(write(cp.bare(f"{type(exc).__name__}: {exc}")), what)

    async def _persist(self, write: Callable[[], Awaitable[T]], what: str) -> T:
        """Messages were sent: keep trying to write their outcomes through a database hiccup
        (locked, restarting), so a passing fault costs a wait, not a repeated batch."""
        delay = 0.2
        for attempt in range(1, PERSIST_ATTEMPTS + 1):
            try:
                return await write()
            except TRANSIENT_ERRORS as exc:
                if attempt == PERSIST_ATTEMPTS:
                    raise
                log.warning(
                    "worker %s: writing %s failed (%s); retrying in %.1f s",
                    self.owner,
                    what,
                    exc,
                    delay,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
        raise AssertionError("unreachable")

    async def _context(self, alert_id: int) -> AlertContext | None:
        ctx = self._contexts.get(alert_id)
        if ctx is None:
            alert = await self.store.get_alert_by_id(alert_id)
            if alert is None or alert.status is AlertStatus.CANCELLED:
                return None
            try:
                message = _prepare(alert)
            except Exception as exc:  # stored before a check caught it: a bug of ours
                log.exception("alert %s cannot be prepared", alert.public_id)
                raise Unsendable(f"internal: the alert cannot be prepared: {exc}") from exc
            ctx = AlertContext(alert, message, _policy(alert))
            if len(self._contexts) > 64:
                self._contexts.clear()
            self._contexts[alert_id] = ctx
        return ctx

    async def _work_batch(
        self,
        ctx: AlertContext,
        shard: Shard,
        batch: list[Recipient],
        head_start: bool = False,
        drained: Callable[[], None] | None = None,
    ) -> Checkpoint:
        now = self.clock()
        cp = Checkpoint(shard.id, shard.alert_id, cursor=batch[-1].id)
        counts: dict[Count, int] = {}
        sent_today = await self._sent_today(batch, now)
        to_send: list[Recipient] = []
        internal: dict[int, Outcome] = {}
        for recipient in batch:
            try:
                decision = decide(recipient, ctx.policy, now, sent_today.get(recipient.id, 0))
            except Exception as exc:  # a bug of ours: this reader's outcome, not the batch's
                to_send.append(recipient)
                internal[recipient.id] = self._internal_error(ctx, recipient, exc)
                continue
            if decision.action is Action.SEND:
                to_send.append(recipient)
            elif decision.action is Action.DEFER:
                assert decision.due_at is not None
                tally(counts, Count.DEFERRED)
                cp.deferrals.append((recipient.id, decision.due_at, "quiet_hours", 0))
            else:
                tally(counts, Count.SKIPPED)
        jobs = [Job(r, ctx) for r in to_send if r.id not in internal]
        sent = iter(await self._send_all(jobs, head_start, drained))
        outcomes = [internal.get(r.id) or next(sent) for r in to_send]
        for recipient, outcome in zip(to_send, outcomes, strict=True):
            self._record(ctx, cp, counts, recipient, outcome, now)
        cp.counts = dict(counts)
        return cp

    async def _sent_today(self, batch: list[Recipient], now: float) -> dict[int, int]:
        keys = [(r.id, local_day(r, now)) for r in batch if r.max_per_day is not None]
        counts = await self.store.daily_counts(keys)
        return {sub_id: counts.get((sub_id, day), 0) for sub_id, day in keys}

    async def _send_all(
        self,
        jobs: list[Job],
        head_start: bool = False,
        drained: Callable[[], None] | None = None,
    ) -> list[Outcome]:
        """Send each job, at most `concurrency` at once, outcomes in the jobs' order.

        That many lanes each take the next job when they finish one: per message there is no
        task and no semaphore to pay for, only the send (measured with `pushdesk bench`). With
        `head_start` the first job is sent alone before the lanes start. `drained` is called
        once every job has been taken by a lane (the next batch may start). Whatever goes
        wrong for one reader is that reader's outcome: a lane never raises, so the batch
        always reaches its checkpoint.
        """
        outcomes: list[Outcome] = [NOT_SENT] * len(jobs)
        queue = iter(enumerate(jobs))
        send, wait, sending = self.sender.send, self.options.inline_wait, self._sending
        last = len(jobs) - 1

        async def lane() -> None:
            for n, job in queue:
                if n == last and drained is not None:
                    drained()
                if not sending.is_set():
                    await sending.wait()
                r = job.recipient
                target = Target(r.endpoint, r.p256dh, r.auth, r.vapid_key_id)
                try:
                    outcomes[n] = await send(
                        target, job.ctx.message, max_wait=wait, prior_attempts=job.prior_attempts
                    )
                except Exception as exc:
                    outcomes[n] = self._internal_error(job.ctx, r, exc)
                if head_start and n == 0:
                    return

        if not jobs and drained is not None:
            drained()
        if head_start and jobs:
            await lane()
        await asyncio.gather(*(lane() for _ in range(min(self.options.concurrency, len(jobs)))))
        return outcomes

    def _internal_error(self, ctx: AlertContext, recipient: Recipient, exc: Exception) -> Outcome:
        """A bug in pushdesk met one reader: logged with the alert and the reader, counted
        failed with reason `internal`, and never retried (it would fail the same way)."""
        log.error(
            "worker %s: internal error for reader %s: %s: %s",
            self.owner,
            recipient.id,
            type(exc).__name__,
            exc,
            exc_info=exc,
            extra={"alert": ctx.alert.public_id},
        )
        return Outcome(Result.FAILED, f"internal: {type(exc).__name__}: {exc}"[:300])

    def _record(
        self,
        ctx: AlertContext,
        cp: Checkpoint,
        counts: dict[Count, int],
        recipient: Recipient,
        outcome: Outcome,
        now: float,
    ) -> None:
        if outcome.result is Result.RETRY:
            assert outcome.retry_at is not None
            tally(counts, Count.DEFERRED)
            cp.deferrals.append((recipient.id, outcome.retry_at, "retry", outcome.attempts))
            return
        tally(counts, RESULT_COUNT[outcome.result])
        if outcome.result is Result.DELIVERED:
            if recipient.max_per_day is not None:
                cp.daily.append((recipient.id, local_day(recipient, now)))
            bucket = delivery_bucket(outcome, ctx.alert.created_at)
            cp.delivery_ms[bucket] = cp.delivery_ms.get(bucket, 0) + 1
            return
        cp.outcomes.append(reader_outcome(recipient.id, outcome))
        if outcome.result is Result.TOO_LARGE:
            cp.error = cp.error or f"push service refused the payload: {outcome.reason}"

    # -- deferred deliveries (quiet hours ended, retries due) ---------------------------
    async def work_due(self) -> int:
        now = self.clock()
        due = await self.store.claim_due(
            self.owner, now, self.options.due_batch, self.options.lease
        )
        if not due:
            return 0
        sent_today = await self._sent_today([item.recipient for item in due], now)
        settlements: list[Settlement] = []
        sending: list[tuple[DueDelivery, AlertContext]] = []
        for item in due:
            try:
                ctx = await self._context(item.alert_id)
            except Unsendable:
                ctx = None  # settled skipped, as for a cancelled alert
            try:
                settled = self._settle_unsent(item, ctx, now, sent_today.get(item.recipient.id, 0))
            except Exception as exc:  # a bug of ours: this reader's outcome, not the batch's
                assert ctx is not None
                failed = self._internal_error(ctx, item.recipient, exc)
                settled = self._settle_sent(item, ctx, failed, now)
            if settled is not None:
                settlements.append(settled)
            elif ctx is not None:
                sending.append((item, ctx))
        jobs = [Job(item.recipient, ctx, item.attempts) for item, ctx in sending]
        outcomes = await self._send_all(jobs)
        for (item, ctx), outcome in zip(sending, outcomes, strict=True):
            settlements.append(self._settle_sent(item, ctx, outcome, now))
        await self._persist(lambda: self.store.settle(self.owner, settlements), "due deliveries")
        return len(due)

    def _settle_unsent(
        self, item: DueDelivery, ctx: AlertContext | None, now: float, sent_today: int
    ) -> Settlement | None:
        """Skip or defer again what is not to be sent now; None for what is."""
        recipient = item.recipient
        if ctx is None or now > ctx.policy.expires_at:
            return Settlement(item.alert_id, recipient.id, Count.SKIPPED)
        decision = decide(recipient, ctx.policy, now, sent_today)
        if decision.action is Action.SKIP:
            return Settlement(item.alert_id, recipient.id, Count.SKIPPED)
        if decision.action is Action.DEFER:
            return Settlement(item.alert_id, recipient.id, Count.DEFERRED, due_at=decision.due_at)
        return None

    def _settle_sent(
        self, item: DueDelivery, ctx: AlertContext, outcome: Outcome, now: float
    ) -> Settlement:
        recipient = item.recipient
        if outcome.result is Result.RETRY:
            return Settlement(
                item.alert_id,
                recipient.id,
                Count.DEFERRED,
                due_at=outcome.retry_at,
                attempts=outcome.attempts,
            )
        count = RESULT_COUNT[outcome.result]
        if outcome.result is Result.DELIVERED:
            day = local_day(recipient, now) if recipient.max_per_day is not None else None
            bucket = delivery_bucket(outcome, ctx.alert.created_at)
            return Settlement(item.alert_id, recipient.id, count, day=day, bucket_ms=bucket)
        return Settlement(
            item.alert_id, recipient.id, count, outcome=reader_outcome(recipient.id, outcome)
        )


def delivery_bucket(outcome: Outcome, created_at: float) -> int:
    accepted = outcome.accepted_at or time.time()
    return bucket_ms((accepted - created_at) * 1000)


def _prepare(alert: Alert) -> PreparedMessage:
    message = Message(
        title=alert.title,
        url=alert.url,
        body=alert.body,
        icon=alert.icon,
        image=alert.image,
        tag=alert.public_id,
        alert_id=alert.public_id,
        timestamp=int(alert.created_at * 1000),
    )
    return prepare(
        message,
        ttl=alert.ttl,
        urgency=alert.urgency,
        topic=alert.public_id,
        created_at=alert.created_at,
    )


def _policy(alert: Alert) -> AlertPolicy:
    return AlertPolicy(alert.respect_quiet_hours, alert.created_at + alert.ttl)


async def _wait_either(stop: asyncio.Event, wake: asyncio.Event, seconds: float) -> None:
    waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(wake.wait())]
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await waiter
