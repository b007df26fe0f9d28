"""Log time: how the pipeline knows that time passes without reading a clock (docs/DOMAIN.md §3, "Silence").

A Kafka partition's log time is the newest device time of the valid readings in it so far, in offset order: a
watermark carried by the log itself. It is the same on every replay and for any number of consumers or shards,
because a partition is read in one order whoever reads it. Each reading is folded with the log time just
before it arrived (`arrived_before`), and at the end of a batch every driver of a partition that waits for time
(`DriverState.is_open`) learns the partition's new log time, so a device that falls silent mid-trip has its
trip closed once its partition has moved on by `gap_s`.

A partition whose every device is silent does not move: with a handful of devices per partition a last trip
can stay open until the next reading arrives in its partition. Tick records written into the log when a
partition idles would carry it on (not built yet; docs/DOMAIN.md §3).
"""

from __future__ import annotations

from collections.abc import Iterable

from domain.driver_state import NEVER_MS


class LogClock:
    """Per partition, the log time after everything seen so far. `advance` returns, for each reading in order,
    the log time just before it; the clock then includes it. Restored from the stored value at a consumer's
    start (consumer_offsets.watermark_ms), so it continues exactly where the durable batches left it."""

    def __init__(self, stored: dict[int, int] | None = None) -> None:
        self.times: dict[int, int] = dict(stored or {})

    def advance(self, positions: Iterable[tuple[int, int]]) -> list[int | None]:
        """`positions`: (partition, device time) of each reading in offset order. Returns the log time before
        each (None when the partition has seen nothing yet: the reading's own time is then its arrival)."""
        times = self.times
        before: list[int | None] = []
        for partition, ts_ms in positions:
            now = times.get(partition, NEVER_MS)
            before.append(None if now == NEVER_MS else now)
            if ts_ms > now:
                times[partition] = ts_ms
        return before

    def tick(self, partition: int, log_ms: int) -> bool:
        """A tick record moves the partition's log time on (never back); True when it moved."""
        if log_ms > self.times.get(partition, NEVER_MS):
            self.times[partition] = log_ms
            return True
        return False

    def of(self, partitions: Iterable[int]) -> dict[int, int]:
        return {p: self.times[p] for p in partitions if p in self.times}
