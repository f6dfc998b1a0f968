"""Plain data the store hands out. No behaviour that needs I/O lives here."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class QuietHours:
    """Local wall-clock window, in minutes after midnight; may wrap past midnight."""

    start: int
    end: int


@dataclass
class Subscription:
    id: int
    public_id: str
    endpoint: str
    p256dh: bytes
    auth: bytes
    vapid_key_id: str
    topics: list[str]
    timezone: str
    quiet_hours: QuietHours | None
    max_per_day: int | None
    language: str | None
    created_at: float
    updated_at: float


@dataclass(frozen=True)
class NewSubscription:
    """What a browser handed us, already validated and decoded."""

    endpoint: str
    p256dh: bytes
    auth: bytes
    vapid_key_id: str
    token_hash: bytes
    preferences: dict[str, Any] = field(default_factory=dict)
    default_topics: tuple[str, ...] = ()  # used when a new reader names no topics


@dataclass(frozen=True)
class VapidKeyRecord:
    id: str
    public_key: str
    status: str  # active | retiring | retired
    created_at: float


COUNT_FIELDS = (
    "audience",
    "sent",
    "delivered",
    "removed",
    "failed",
    "skipped",
    "deferred",
    "shown",
    "clicked",
)
ALERT_STATUSES = ("queued", "sending", "done", "cancelled", "failed")


@dataclass
class Alert:
    id: int
    public_id: str
    title: str
    url: str
    body: str | None
    icon: str | None
    image: str | None
    topics: list[str]
    ttl: int
    urgency: str
    respect_quiet_hours: bool
    editor: str
    status: str
    created_at: float
    started_at: float | None
    finished_at: float | None
    counts: dict[str, int]
    error: str | None = None
    first_response: dict[str, Any] | None = None


@dataclass(frozen=True)
class NewAlert:
    title: str
    url: str
    body: str | None
    icon: str | None
    image: str | None
    topics: list[str]
    ttl: int
    urgency: str
    respect_quiet_hours: bool
    editor: str
    idempotency_key: str | None = None


@dataclass(frozen=True)
class AlertCreation:
    """What create_alert did: made it, replayed an idempotent one, or found a duplicate."""

    alert: Alert
    outcome: str  # created | replayed | duplicate


@dataclass(frozen=True)
class Shard:
    id: int
    alert_id: int
    lo: int
    hi: int
    cursor: int


@dataclass(frozen=True)
class Recipient:
    """A subscriber as the fan-out needs them: keys to send, preferences to apply."""

    id: int
    endpoint: str
    p256dh: bytes
    auth: bytes
    vapid_key_id: str
    timezone: str
    quiet_start: int | None
    quiet_end: int | None
    max_per_day: int | None
    vapid_rejected: bool


@dataclass
class Checkpoint:
    """One batch's results, written in one transaction with the shard's cursor."""

    shard_id: int
    alert_id: int
    cursor: int
    counts: dict[str, int] = field(default_factory=dict)
    outcomes: list[tuple[int, str, str]] = field(default_factory=list)  # (sub id, result, reason)
    # (sub id, due, reason, requests made so far): attempts go on from there when it is due
    deferrals: list[tuple[int, float, str, int]] = field(default_factory=list)
    daily: list[tuple[int, str]] = field(default_factory=list)  # (sub id, local day) delivered
    delivery_ms: dict[int, int] = field(default_factory=dict)  # time bucket -> deliveries
    error: str | None = None

    def subscription_ids(self) -> set[int]:
        """The readers this checkpoint writes rows for (not only counts)."""
        ids = {d[0] for d in self.deferrals}
        ids.update(d[0] for d in self.daily)
        return ids

    def without_departed(self, live: set[int]) -> None:
        """Readers deleted while their message was in flight (unsubscribed, or a 410 from
        another alert) leave no rows behind: their daily count is moot, and a deferral for
        them is counted skipped, as deleting a reader does to its pending deferrals."""
        kept = [d for d in self.deferrals if d[0] in live]
        departed = len(self.deferrals) - len(kept)
        if departed:
            self.deferrals = kept
            self.counts["deferred"] = self.counts.get("deferred", 0) - departed
            self.counts["skipped"] = self.counts.get("skipped", 0) + departed
        self.daily = [d for d in self.daily if d[0] in live]

    def bare(self, reason: str) -> Checkpoint:
        """This batch with counts and cursor only, for when writing it whole failed in a way
        that retrying will not mend: deferred readers are counted failed, so the batch is
        never sent again and the counts still add up."""
        counts = dict(self.counts)
        deferred = len(self.deferrals)
        counts["deferred"] = counts.get("deferred", 0) - deferred
        counts["failed"] = counts.get("failed", 0) + deferred
        counts["sent"] = counts.get("sent", 0) + deferred
        return Checkpoint(
            self.shard_id, self.alert_id, self.cursor, counts, error=f"internal: {reason}"
        )


@dataclass(frozen=True)
class DueDelivery:
    """A deferred delivery whose time has come (end of quiet hours, or a retry)."""

    alert_id: int
    reason: str
    attempts: int
    recipient: Recipient


@dataclass
class Settlement:
    """Results of due deliveries: each leaves `deferred` for its final count."""

    alert_id: int
    subscription_id: int
    count: str  # delivered | removed | failed | skipped | deferred (rescheduled)
    outcome: tuple[str, str] | None = None  # (result, reason) for the subscription
    due_at: float | None = None  # when rescheduled
    attempts: int = 0  # requests made so far, when rescheduled
    day: str | None = None  # local day, when delivered (daily cap)
    bucket_ms: int | None = None  # delivery time bucket, when delivered
