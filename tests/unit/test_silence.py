"""Trips end on silence, measured in log time (docs/DOMAIN.md §3 "Silence", domain/log_time.py), through the
shard and persistence use cases over the in-memory stores: the same events whatever the batch size, after an
eviction (a restarted shard), and not fooled by a device that uploads its backlog late."""

from __future__ import annotations

import uuid

import msgspec
import pytest

from domain.readings import Reading, ReadingType
from domain.rules import TripRules
from domain.trip_machine import IGNITION_OFF_WHILE_MOVING
from storage.memory.event_store import InMemoryEventStore
from storage.memory.projector import InMemoryProjector
from tests.unit.test_ingest_handlers import arrived_in_one_partition, log_time_after, persist_batch
from usecases.ingest import PersistBatchHandler, ShardBatchHandler

pytestmark = pytest.mark.unit

T0 = 1_780_000_000_000
RULES = TripRules()
GAP_MS = int(RULES.gap_s * 1000)


def reading(driver: str, ts_ms: int, speed: float, kind: ReadingType = ReadingType.POSITION,
            heading: float | None = 90.0) -> Reading:
    metres_east = (ts_ms - T0) / 1000 * speed / 3.6
    return Reading(event_id=uuid.uuid5(uuid.NAMESPACE_URL, f"{driver}/{ts_ms}/{kind}"), driver_id=driver,
                   ts_ms=ts_ms, type=kind, lat=48.0, lon=11.0 + metres_east / 74_000, speed_kmh=speed,
                   accel_ms2=0.0, heading=heading)


def drive(driver: str, start_ms: int, seconds: int, speed: float = 90.0, ignition_on: bool = True) -> list[Reading]:
    out = [reading(driver, start_ms, 0.0, ReadingType.IGNITION_ON)] if ignition_on else []
    out += [reading(driver, start_ms + (s + 1) * 1000, speed) for s in range(seconds)]
    return out


def cut_off_then_others_drive() -> list[Reading]:
    """A drives 10 min at 90 km/h and falls silent mid-drive (no ignition_off); B keeps driving in the same
    partition for longer than the gap, one reading every 10 s."""
    a = drive("A", T0, 600)
    b = [reading("B", T0 + s * 10_000, 50.0) for s in range(1, (600_000 + GAP_MS) // 10_000 + 30)]
    return sorted(a + b, key=lambda r: r.ts_ms)


async def run(readings: list[Reading], batch_size: int, evict_every: int = 0, fail_every: int = 0,
              idle_batches: int = 3):
    """Fold and persist in batches. `fail_every`: every such batch is folded, then lost before it is durable
    (the persistence actor died), and the consumer's rewind (`ShardBatchHandler.evict_partitions`) runs
    before the batch is folded again."""
    store = InMemoryEventStore()
    folder = ShardBatchHandler(store, RULES, shard=0, snapshot_every_events=50, idle_batches=idle_batches)
    persister = PersistBatchHandler(store, InMemoryProjector())
    items = arrived_in_one_partition(readings)
    for n, start in enumerate(range(0, len(items), batch_size), start=1):
        chunk = items[start : start + batch_size]
        if fail_every and n % fail_every == 0:
            await folder.handle(chunk, log_times=log_time_after(chunk))  # folded, never durable
            folder.evict_partitions({item.partition for item in chunk})
        done = await folder.handle(chunk, log_times=log_time_after(chunk))
        await persister.handle(persist_batch(chunk, done.output))
        if evict_every and n % evict_every == 0:
            folder.evict(None)  # as after a shard restart: everything reloads from the store
    return store


def events_of(store: InMemoryEventStore, driver: str) -> list[tuple[str, bytes]]:
    return [(e.event_type, e.payload_json) for e in store.streams.get(driver, [])]


def ended(store: InMemoryEventStore, driver: str) -> list[dict]:
    return [msgspec.json.decode(p) for t, p in events_of(store, driver) if t == "trip_ended"]


async def test_a_trip_cut_off_mid_drive_ends_as_device_silent_at_its_last_reading():
    store = await run(cut_off_then_others_drive(), batch_size=64)
    (trip,) = ended(store, "A")
    assert trip["summary"]["end_reason"] == "device_silent"
    assert trip["summary"]["end_ms"] == T0 + 600_000  # the last reading, not when the silence was noticed
    assert trip["summary"]["distance_m"] > 14_000
    assert len(store.trips) >= 1 and any(t.driver_id == "A" for t in store.trips.values())


async def test_without_enough_log_time_the_trip_stays_open():
    readings = [r for r in cut_off_then_others_drive() if r.ts_ms < T0 + 600_000 + GAP_MS - 60_000]
    store = await run(readings, batch_size=64)
    assert ended(store, "A") == []


@pytest.mark.parametrize("batch_size", [1, 7, 200, 100_000])
async def test_the_same_events_whatever_the_batch_size_and_across_restarts(batch_size):
    readings = cut_off_then_others_drive()
    reference = await run(readings, batch_size=50)
    for store in (await run(readings, batch_size), await run(readings, batch_size, evict_every=3)):
        assert events_of(store, "A") == events_of(reference, "A")
        assert events_of(store, "B") == events_of(reference, "B")


async def test_a_batch_lost_after_log_time_closed_a_silent_trip_closes_it_again_on_replay():
    """The batch that only moves log time past A's silence (A has no reading in it) is lost before it is durable.
    The rewind must forget A too, though A is not among the batch's drivers: otherwise A stays closed in memory,
    its trip_ended is never written, and log time cannot close it again (found by the node-loss test)."""
    readings = cut_off_then_others_drive()
    reference = await run(readings, batch_size=20)
    for fail_every in (1, 2, 3, 5):
        # drivers stay in memory for many batches (as in the pipeline): A is still there, closed, at the replay
        store = await run(readings, batch_size=20, fail_every=fail_every, idle_batches=1_000)
        assert events_of(store, "A") == events_of(reference, "A"), fail_every
        assert events_of(store, "B") == events_of(reference, "B"), fail_every
    (trip,) = ended(reference, "A")
    assert trip["summary"]["end_reason"] == "device_silent"


async def test_a_backlog_uploaded_late_is_one_trip_not_one_per_reading():
    """A store-and-forward device: A's whole 10-minute drive arrives two hours late, after B's readings moved
    log time on. Silence is counted from A's previous arrival, so the backlog is folded as the drive it was."""
    a = drive("A", T0, 600)
    b = [reading("B", T0 + s * 10_000, 50.0) for s in range(1, 2 * 3600 // 10)]
    store = await run(b + a, batch_size=64)
    assert ended(store, "A") == []  # still open: nothing was silent since the backlog arrived
    later = [reading("B", T0 + 2 * 3600_000 + s * 10_000, 50.0) for s in range(1, GAP_MS // 10_000 + 30)]
    store = await run(b + a + later, batch_size=64)
    (trip,) = ended(store, "A")
    assert trip["summary"]["end_reason"] == "device_silent" and trip["summary"]["end_ms"] == T0 + 600_000


async def test_ignition_off_at_speed_ends_the_trip_with_a_quality_flag_once_log_time_passes_the_window():
    a = [*drive("A", T0, 300), reading("A", T0 + 301_000, 90.0, ReadingType.IGNITION_OFF)]
    b = [reading("B", T0 + s * 1000, 40.0) for s in range(1, 301 + RULES.reorder_window_ms // 1000 + 5)]
    store = await run(sorted(a + b, key=lambda r: r.ts_ms), batch_size=32)
    (trip,) = ended(store, "A")
    assert trip["summary"]["end_reason"] == "ignition_off"
    assert trip["summary"]["quality_flags"] == [IGNITION_OFF_WHILE_MOVING]


async def test_an_ordinary_ignition_off_has_no_flag():
    stop = [reading("A", T0 + 301_000, 0.0), reading("A", T0 + 302_000, 0.0, ReadingType.IGNITION_OFF)]
    a = [*drive("A", T0, 300), *stop]
    b = [reading("B", T0 + s * 1000, 40.0) for s in range(1, 320)]
    store = await run(sorted(a + b, key=lambda r: r.ts_ms), batch_size=32)
    (trip,) = ended(store, "A")
    assert trip["summary"]["quality_flags"] == []



# -- log ticks: carrying log time on in an idle partition ------------------------------------------------------


def test_log_ticks_move_log_time_but_are_not_readings():
    from domain.log_time import LogClock

    clock = LogClock()
    before = clock.advance([(0, 1_000, False), (0, 5_000, True), (0, 3_000, False), (1, 2_000, False)])
    assert before == [None, 5_000, None]  # the tick moved partition 0's log time; partition 1 is its own
    assert clock.times == {0: 5_000, 1: 2_000} and clock.by_readings == {0: 3_000, 1: 2_000}


def test_an_idle_partition_gets_a_tick_of_log_time_plus_idle_time_until_the_horizon():
    from domain.log_time import IdleTicker, LogClock, decode_tick, encode_tick

    clock = LogClock({0: 100_000, 1: 100_000})
    ticker = IdleTicker(idle_s=10, horizon_ms=30_000)
    assert ticker.due(clock, [0, 1, 2], now_s=0.0) == {}  # idle time counts from when the consumer first looks
    ticker.seen(1, 5.0)
    assert ticker.due(clock, [0, 1, 2], now_s=10.0) == {0: 110_000}  # partition 2 never had a record: no time
    clock.advance([(0, 110_000, True)])
    assert ticker.due(clock, [0, 1], now_s=15.0) == {1: 110_000}
    clock.advance([(0, 125_000, True), (0, 131_000, True)])  # 31 s past its newest reading: beyond the horizon
    assert ticker.due(clock, [0], now_s=40.0) == {}
    assert decode_tick(encode_tick(123)) == 123 and decode_tick(b'{"x": 1}') is None and decode_tick(b"[") is None
    assert IdleTicker(idle_s=0, horizon_ms=1).due(clock, [0, 1], now_s=1e9) == {}  # 0 = never


async def test_unknown_heading_and_speed_do_not_stop_a_trip_from_folding():
    a = [reading("A", T0 + s * 1000, 60.0, heading=None) for s in range(0, 400)]
    a += [msgspec.structs.replace(reading("A", T0 + 400_000, 0.0, ReadingType.IGNITION_OFF), speed_kmh=None)]
    b = [reading("B", T0 + s * 1000, 40.0) for s in range(1, 420)]
    store = await run(sorted(a + b, key=lambda r: r.ts_ms), batch_size=32)
    (trip,) = ended(store, "A")
    assert trip["summary"]["end_reason"] == "ignition_off" and trip["summary"]["distance_m"] > 5_000
