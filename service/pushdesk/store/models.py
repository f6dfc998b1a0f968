"""Plain data the store hands out. No behaviour that needs I/O lives here."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum, StrEnum
from typing import Any, NamedTuple


@dataclass(frozen=True)
class QuietHours:
    """Local wall-clock window, in minutes after midnight; may wrap past midnight."""

    start: int
    end: int


class Keep(Enum):
    """The value of a preference a request did not name: left as it is (or the default)."""

    KEEP = "keep"


KEEP = Keep.KEEP


@dataclass(frozen=True)
class Preferences:
    """A reader's choices. A field left KEEP was not given: a new reader gets the default
    (UTC, no quiet hours, no cap, the catalogue's default topics), an existing one keeps theirs,
    as a PATCH names only what changes. None clears quiet hours, the cap or the language."""

    topics: tuple[str, ...] | Keep = KEEP
    timezone: str | Keep = KEEP
    quiet_hours: QuietHours | Keep | None = KEEP
    max_per_day: int | Keep | None = KEEP
    language: str | Keep | None = KEEP

    def topics_or(self, defaults: tuple[str, ...]) -> tuple[str, ...]:
        return defaults if isinstance(self.topics, Keep) else self.topics


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
    preferences: Preferences = Preferences()
    default_topics: tuple[str, ...] = ()  # used when a new reader names no topics


@dataclass(frozen=True)
class VapidKeyRecord:
    id: str
    public_key: str
    status: str  # active | retiring | retired
    created_at: float


class AlertStatus(StrEnum):
    """Where an alert is in its life (the `status` column and the API's `status`)."""

    QUEUED = "queued"  # stored; no worker has planned it yet
    SENDING = "sending"  # a worker claimed a shard
    DONE = "done"  # every shard worked (deferred readers may still be due)
    CANCELLED = "cancelled"  # an editor stopped what was not yet sent
    FAILED = "failed"  # worked, and nobody could be delivered to


class Count(StrEnum):
    """The alert's counters (`counts` in the API); each reader ends in exactly one of
    delivered, removed, failed, skipped or deferred, and `sent` counts the requests' verdicts
    (delivered + removed + failed)."""

    AUDIENCE = "audience"
    SENT = "sent"
    DELIVERED = "delivered"
    REMOVED = "removed"
    FAILED = "failed"
    SKIPPED = "skipped"
    DEFERRED = "deferred"
    SHOWN = "shown"
    CLICKED = "clicked"


COUNT_FIELDS = tuple(Count)  # in the order of the alerts table's columns
# The verdicts a push service gave: each is also counted `sent`.
SENT = frozenset({Count.DELIVERED, Count.REMOVED, Count.FAILED})


def tally(counts: dict[Count, int], final: Count, readers: int = 1) -> None:
    """Count `readers` readers ending in `final` — the one home of the `sent` rule."""
    counts[final] = counts.get(final, 0) + readers
    if final in SENT:
        counts[Count.SENT] = counts.get(Count.SENT, 0) + readers


class EventKind(StrEnum):
    """What a reader's service worker reports (`POST /api/events`)."""

    SHOWN = "shown"
    CLICKED = "clicked"


class EventRecord(StrEnum):
    """What became of one engagement beacon."""

    COUNTED = "counted"
    DUPLICATE = "duplicate"  # this reader's event of this kind was counted already
    UNKNOWN_ALERT = "unknown_alert"
    UNKNOWN_SUBSCRIPTION = "unknown_subscription"
    NOT_IN_AUDIENCE = "not_in_audience"


class ReaderResult(StrEnum):
    """What a push service's answer did to a reader, as the store records it."""

    GONE = "gone"  # 404/410: the subscription is deleted
    VAPID_REJECTED = "vapid_rejected"  # 401/403: marked, skipped until it subscribes again
    TOO_LARGE = "too_large"
    REJECTED = "rejected"
    FAILED = "failed"


class ReaderOutcome(NamedTuple):
    """One reader's final verdict for one alert, from the fan-out to the store."""

    subscription_id: int
    result: ReaderResult
    reason: str


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
    status: AlertStatus
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


class CreationOutcome(StrEnum):
    """What create_alert did with a new alert."""

    CREATED = "created"
    REPLAYED = "replayed"  # the same Idempotency-Key within its window: the first alert
    DUPLICATE = "duplicate"  # the same link and topics lately: the earlier alert


@dataclass(frozen=True)
class AlertCreation:
    """What create_alert did, and the alert it concerns."""

    alert: Alert
    outcome: CreationOutcome


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
    counts: dict[Count, int] = field(default_factory=dict)
    outcomes: list[ReaderOutcome] = field(default_factory=list)  # readers not delivered to
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
            tally(self.counts, Count.DEFERRED, -departed)
            tally(self.counts, Count.SKIPPED, departed)
        self.daily = [d for d in self.daily if d[0] in live]

    def bare(self, reason: str) -> Checkpoint:
        """This batch with counts and cursor only, for when writing it whole failed in a way
        that retrying will not mend: deferred readers are counted failed, so the batch is
        never sent again and the counts still add up."""
        counts = dict(self.counts)
        tally(counts, Count.DEFERRED, -len(self.deferrals))
        tally(counts, Count.FAILED, len(self.deferrals))
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
    count: Count  # where the reader ends; DEFERRED: rescheduled
    outcome: ReaderOutcome | None = None  # for the subscription, when not delivered
    due_at: float | None = None  # when rescheduled
    attempts: int = 0  # requests made so far, when rescheduled
    day: str | None = None  # local day, when delivered (daily cap)
    bucket_ms: int | None = None  # delivery time bucket, when delivered

    @property
    def counts(self) -> dict[Count, int]:
        """The alert's counters this settlement changes."""
        changes = {Count.DEFERRED: -1}
        tally(changes, self.count)
        return changes
