"""Reader policy with a pinned clock: quiet hours across midnight and DST, daily caps."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from pushdesk.fanout.planner import split
from pushdesk.fanout.policy import Action, AlertPolicy, decide, local_day, quiet_until
from pushdesk.store.models import Recipient


def reader(tz="Europe/London", quiet=(22 * 60, 7 * 60), cap=None, rejected=False) -> Recipient:
    start, end = quiet if quiet else (None, None)
    return Recipient(1, "https://e", b"", b"", "k", tz, start, end, cap, rejected)


def at(text: str, tz: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(tz)).timestamp()


LONG = AlertPolicy(respect_quiet_hours=True, expires_at=at("2026-12-31T00:00", "UTC"))


@pytest.mark.parametrize(
    ("local", "until"),
    [
        ("2026-11-25T23:30", "2026-11-26T07:00"),  # after start, before midnight
        ("2026-11-26T03:00", "2026-11-26T07:00"),  # after midnight
        ("2026-11-25T22:00", "2026-11-26T07:00"),  # the first quiet minute
        ("2026-11-26T07:00", None),  # the end minute is awake
        ("2026-11-26T12:00", None),
    ],
)
def test_quiet_hours_wrapping_midnight(local, until):
    tz = "Europe/London"
    expected = at(until, tz) if until else None
    assert quiet_until(reader(tz), at(local, tz)) == expected


def test_quiet_hours_within_one_day_and_in_the_readers_own_zone():
    r = reader("Asia/Tokyo", quiet=(13 * 60, 14 * 60))
    assert quiet_until(r, at("2026-11-25T13:30", "Asia/Tokyo")) == at(
        "2026-11-25T14:00", "Asia/Tokyo"
    )
    # 13:30 in London is 22:30 in Tokyo: awake there.
    assert quiet_until(r, at("2026-11-25T13:30", "Europe/London")) is None


def test_quiet_hours_end_across_a_dst_change():
    # Clocks go forward in New York at 02:00 on 2026-03-08; 07:00 local is still 07:00 local.
    r = reader("America/New_York", quiet=(23 * 60, 7 * 60))
    until = quiet_until(r, at("2026-03-07T23:30", "America/New_York"))
    assert datetime.fromtimestamp(until, ZoneInfo("America/New_York")).hour == 7
    assert until - at("2026-03-07T23:30", "America/New_York") == 6.5 * 3600


def test_decisions():
    tz = "Europe/London"
    night = at("2026-11-25T23:00", tz)
    day = at("2026-11-25T12:00", tz)
    assert decide(reader(), LONG, day).action is Action.SEND
    deferred = decide(reader(), LONG, night)
    assert deferred.action is Action.DEFER and deferred.due_at == at("2026-11-26T07:00", tz)
    short = AlertPolicy(True, night + 600)
    assert decide(reader(), short, night).action is Action.SKIP
    assert decide(reader(), AlertPolicy(False, night + 600), night).action is Action.SEND
    assert decide(reader(cap=2), LONG, day, sent_today=1).action is Action.SEND
    assert decide(reader(cap=2), LONG, day, sent_today=2).action is Action.SKIP
    assert decide(reader(rejected=True), LONG, day).action is Action.SKIP
    assert decide(reader(quiet=None), LONG, night).action is Action.SEND


def test_local_day_is_the_readers_date():
    moment = at("2026-11-25T23:30", "UTC")
    assert local_day(reader("UTC"), moment) == "2026-11-25"
    assert local_day(reader("Asia/Tokyo"), moment) == "2026-11-26"
    assert local_day(reader("America/Los_Angeles"), moment) == "2026-11-25"


def test_planner_cuts_contiguous_ranges():
    assert split(0, 2500, 1000) == [(0, 1000), (1000, 2000), (2000, 2500)]
    assert split(41, 42, 1000) == [(41, 42)]
    assert split(5, 5) == []


@pytest.mark.parametrize(
    "lo, hi, width, shards",
    [
        (0, 0, 1000, 0),
        (0, 1, 1000, 1),
        (0, 1000, 1000, 1),
        (0, 1001, 1000, 2),
        (0, 100_000, 1000, 100),
        (0, 1_000_000, 1000, 256),
        (7, 1_000_007, 1000, 256),
        (0, 10, 3, 4),
    ],
)
def test_shards_cover_the_range_once_and_are_capped(lo, hi, width, shards):
    from pushdesk.fanout.planner import MAX_SHARDS, split

    ranges = split(lo, hi, width)
    assert len(ranges) == shards <= MAX_SHARDS
    covered = [n for a, b in ranges for n in range(a + 1, b + 1)]
    assert covered == list(range(lo + 1, hi + 1))  # every id once, in order
