"""Log time: how the pipeline knows that time passes without reading a clock (docs/DOMAIN.md §3, "Silence").

A Kafka partition's log time is the newest device time of the valid readings in it so far, in offset order: a
watermark carried by the log itself. It is the same on every replay and for any number of consumers or shards,
because a partition is read in one order whoever reads it. Each reading is folded with the log time just
before it arrived (`arrived_before`), and at the end of a batch every driver of a partition that waits for time
(`DriverState.is_open`) learns the partition's new log time, so a device that falls silent mid-trip has its
trip closed once its partition has moved on by `gap_s`.

A partition whose every device is silent does not move by readings. Its consumer then writes *log ticks* into
it (`LOG_TICK_HEADER`): records that carry log time on by the wall time the partition has been idle, so a lone
driver's last trip closes too. Being records in the log, they are replayed like readings, so the result still
depends on the log alone (`IdleTicker` decides when; the consumer writes them).
"""

from __future__ import annotations

from collections.abc import Iterable

import msgspec

from domain.driver_state import NEVER_MS

LOG_TICK_HEADER = "autoins-log-tick"  # a record with this header is a log tick, not a reading


class LogTick(msgspec.Struct, frozen=True):
    """The value of a log tick record: the partition's log time is at least `log_ms` from here on."""

    log_ms: int


def encode_tick(log_ms: int) -> bytes:
    return msgspec.json.encode(LogTick(log_ms))


def decode_tick(value: bytes) -> int | None:
    """The tick's log time, None for a value that is not a tick (it is then treated as a reading and refused)."""
    try:
        return msgspec.json.decode(value, type=LogTick).log_ms
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None


class LogClock:
    """Per partition, the log time after everything seen so far. `advance` returns, for each reading in order,
    the log time just before it; the clock then includes it. Restored from the stored value at a consumer's
    start (consumer_offsets.watermark_ms), so it continues exactly where the durable batches left it."""

    def __init__(self, stored: dict[int, int] | None = None) -> None:
        self.times: dict[int, int] = dict(stored or {})
        # the newest reading time per partition (ticks excluded): how far ticks may carry log time past it
        self.by_readings: dict[int, int] = dict(self.times)

    def advance(self, positions: Iterable[tuple[int, int, bool]]) -> list[int | None]:
        """`positions`: (partition, time, is_tick) of each reading and log tick, in offset order. Returns, for
        each reading (ticks give nothing), the log time before it (None when the partition has seen nothing
        yet: the reading's own time is then its arrival)."""
        times = self.times
        before: list[int | None] = []
        for partition, ms, is_tick in positions:
            now = times.get(partition, NEVER_MS)
            if not is_tick:
                before.append(None if now == NEVER_MS else now)
                self.by_readings[partition] = max(self.by_readings.get(partition, NEVER_MS), ms)
            if ms > now:
                times[partition] = ms
        return before

    def of(self, partitions: Iterable[int]) -> dict[int, int]:
        return {p: self.times[p] for p in partitions if p in self.times}


class IdleTicker:
    """When to write a log tick into an idle partition, and with what time: after `idle_s` of wall time without a
    record in it, log time + that idle time; again every `idle_s` while it stays idle, until log time is
    `horizon_ms` past its newest reading (by then silence has closed everything it can: `gap_s` and a margin).
    Wall time only decides *when* a tick is written; what it does is read back from the log."""

    def __init__(self, idle_s: float, horizon_ms: int) -> None:
        self.idle_s = idle_s
        self.horizon_ms = horizon_ms
        self.last_record_at: dict[int, float] = {}  # partition -> wall time of its last record seen or ticked

    def seen(self, partition: int, at_s: float) -> None:
        self.last_record_at[partition] = at_s

    def due(self, clock: LogClock, partitions: Iterable[int], now_s: float) -> dict[int, int]:
        """partition -> the log time of the tick to write now, for each idle partition that needs one."""
        if self.idle_s <= 0:
            return {}
        ticks = {}
        for p in partitions:
            log_ms = clock.times.get(p)
            if log_ms is None:
                continue  # nothing read from it yet: no time to carry on
            since = self.last_record_at.setdefault(p, now_s)
            idle_s = now_s - since
            if idle_s < self.idle_s or log_ms - clock.by_readings.get(p, log_ms) > self.horizon_ms:
                continue
            ticks[p] = log_ms + int(idle_s * 1000)
            self.last_record_at[p] = now_s
        return ticks
