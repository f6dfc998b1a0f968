"""Engagement arithmetic: delivery-time buckets, percentiles and the per-second timeline.

Deliveries are counted in buckets of time since the alert was created: 10 ms wide up to 10 s,
100 ms up to 100 s, then 1 s. Percentiles are read off the cumulative histogram (to the
bucket's resolution), so the store keeps a few hundred rows per alert whatever its audience.
"""

from __future__ import annotations

import math
from collections.abc import Iterable


def bucket_ms(ms: float) -> int:
    ms = max(0.0, ms)
    for limit, width in ((10_000, 10), (100_000, 100)):
        if ms < limit:
            return int(ms // width) * width
    return int(ms // 1000) * 1000


def percentiles(histogram: Iterable[tuple[int, int]], wanted=(50, 90, 99)) -> dict[str, int | None]:
    """{"p50": ms, ...}: the upper edge of the bucket holding each rank (None without data)."""
    rows = sorted(histogram)
    total = sum(count for _, count in rows)
    result: dict[str, int | None] = {}
    for p in wanted:
        if total == 0:
            result[f"p{p}"] = None
            continue
        rank = math.ceil(total * p / 100)
        seen = 0
        for bucket, count in rows:
            seen += count
            if seen >= rank:
                result[f"p{p}"] = bucket + _width(bucket)
                break
    return result


def _width(bucket: int) -> int:
    return 10 if bucket < 10_000 else 100 if bucket < 100_000 else 1000


def timeline(
    histogram: Iterable[tuple[int, int]], events: Iterable[tuple[int, str, int]]
) -> list[dict[str, int]]:
    """Cumulative delivered, shown and clicked at the end of each second since the alert."""
    per_second: dict[int, dict[str, int]] = {}
    for bucket, count in histogram:
        row = per_second.setdefault(bucket // 1000, {})
        row["delivered"] = row.get("delivered", 0) + count
    for second, kind, count in events:
        row = per_second.setdefault(max(0, second), {})
        row[kind] = row.get(kind, 0) + count
    if not per_second:
        return []
    totals = {"delivered": 0, "shown": 0, "clicked": 0}
    out = []
    for second in range(max(per_second) + 1):
        for kind, count in per_second.get(second, {}).items():
            totals[kind] += count
        out.append({"second": second, **totals})
    return out
