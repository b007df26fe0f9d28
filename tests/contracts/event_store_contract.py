"""The event store contract: what PostgresEventStore and the InMemoryEventStore fake both do (STYLE.md habit 6).

Written once against a `backend` fixture (a store plus a few test hooks) and a `uid` fixture; run on the fake
in the unit suite (tests/unit/test_event_store_contract.py) and on PostgreSQL in the integration suite
(tests/integration/test_event_store.py). `backend.pool` is None for the fake; the few checks that need SQL
are guarded by it.
"""

from __future__ import annotations

import asyncio
import secrets
import statistics
from dataclasses import dataclass

import pytest

from domain.batches import PartitionOffset, PersistBatch, empty_reading_columns
from storage.event_store_contract import ConcurrencyConflict
from storage.memory.event_store import InMemoryEventStore
from tests.contracts.event_store_builders import T0_MS, TOPIC, as_stored, batch, event, items, snapshot, trip


@dataclass
class MemoryBackend:
    """The fake with the hooks the contract needs (the PostgreSQL twin lives in the integration module)."""

    store: InMemoryEventStore
    kind: str = "memory"
    pool: None = None

    async def set_timezone(self, driver_id: str, timezone: str) -> None:
        self.store.timezones[driver_id] = timezone

    async def count_readings(self, driver_id: str) -> int:
        return len(self.store.readings.get(driver_id, {}))


@pytest.fixture
def uid() -> str:
    return secrets.token_hex(4)


# -- contract ---------------------------------------------------------------------------------------

async def test_a_batch_is_stored_exactly_once_when_written_twice(backend, uid):
    driver = f"d-{uid}"
    readings = items(driver, range(100))
    b = batch(f"g-{uid}", readings, [event(driver, v) for v in (1, 2, 3)], [snapshot(driver, 99, 3, T0_MS)],
              [trip(driver)], {0: 100})  # fmt: skip
    first = await backend.store.write_batch(b)
    second = await backend.store.write_batch(b)
    assert (first.readings_inserted, first.readings_duplicate, first.events_inserted, first.events_skipped) == (
        100, 0, 3, 0,
    )  # fmt: skip
    assert (first.snapshots_written, first.trips_inserted) == (1, 1)
    assert (second.readings_inserted, second.readings_duplicate, second.events_inserted, second.events_skipped) == (
        0, 100, 0, 3,
    )  # fmt: skip
    assert (second.snapshots_written, second.trips_inserted) == (0, 0)
    if backend.kind == "postgres":  # the duplicates sent the retry down the staging path
        assert (first.readings_staged, second.readings_staged) == (False, True)
    assert await backend.count_readings(driver) == 100
    assert await backend.store.stream_head(driver) == 3
    assert await backend.store.stored_offsets(f"g-{uid}", TOPIC) == {0: 100}


async def test_the_same_reading_twice_in_one_batch_is_stored_once(backend, uid):
    driver = f"d-{uid}"
    readings = items(driver, range(5))
    result = await backend.store.write_batch(batch(f"g-{uid}", readings + readings[:2]))
    assert (result.readings_inserted, result.readings_duplicate) == (5, 2)
    assert await backend.count_readings(driver) == 5


async def test_offsets_never_move_back(backend, uid):
    group = f"g-{uid}"
    await backend.store.write_batch(batch(group, offsets={0: 100, 1: 50}))
    await backend.store.write_batch(batch(group, offsets={0: 80, 1: 70, 2: 5}))
    assert await backend.store.stored_offsets(group, TOPIC) == {0: 100, 1: 70, 2: 5}
    both = PersistBatch(group, empty_reading_columns(), (PartitionOffset(TOPIC, 3, 90), PartitionOffset(TOPIC, 3, 120)))
    await backend.store.write_batch(both)
    assert (await backend.store.stored_offsets(group, TOPIC))[3] == 120
    assert await backend.store.stored_offsets(f"other-{uid}", TOPIC) == {}


async def test_events_are_appended_with_their_versions(backend, uid):
    stream = f"d-{uid}"
    first = [event(stream, v, occurred_at_ms=T0_MS + v) for v in (1, 2)]
    second = [event(stream, v, occurred_at_ms=T0_MS + v) for v in (3, 4, 5)]
    assert (await backend.store.write_batch(batch(f"g-{uid}", events=first))).events_inserted == 2
    assert (await backend.store.write_batch(batch(f"g-{uid}", events=second))).events_inserted == 3
    stored = await backend.store.read_stream(stream)
    assert [(e.stream_version, e.event_id, e.occurred_at_ms) for e in stored] == [
        (e.stream_version, e.event_id, e.occurred_at_ms) for e in first + second
    ]
    assert stored[0].payload == {"type": "trip_started", "event_id": str(first[0].event_id), "version": 1}
    assert await backend.store.stream_head(stream) == 5
    assert await backend.store.stream_head(f"nobody-{uid}") == 0


async def test_a_retried_batch_overlapping_the_stored_head_appends_only_the_rest(backend, uid):
    stream = f"d-{uid}"
    events = [event(stream, v) for v in (1, 2, 3, 4)]
    await backend.store.write_batch(batch(f"g-{uid}", events=events[:2]))
    result = await backend.store.write_batch(batch(f"g-{uid}", events=events))
    assert (result.events_inserted, result.events_skipped) == (2, 2)
    assert [e.event_id for e in await backend.store.read_stream(stream)] == [e.event_id for e in events]


async def test_a_stale_writer_conflicts_and_nothing_of_its_batch_is_stored(backend, uid):
    stream, group = f"d-{uid}", f"g-{uid}"
    a_events = [event(stream, v) for v in (1, 2, 3)]
    await backend.store.write_batch(batch(group, items(stream, range(10)), a_events, offsets={0: 10}))
    # B saw only v1 and appends its own v2, with readings, a snapshot, a trip and offsets
    stale = batch(group, items(stream, range(10, 20)), [event(stream, 2)], [snapshot(stream, 19, 2, T0_MS)],
                  [trip(stream)], {0: 20})  # fmt: skip
    with pytest.raises(ConcurrencyConflict, match=f"stream '{stream}'") as caught:
        await backend.store.write_batch(stale)
    assert (caught.value.stream_id, caught.value.expected_version, caught.value.found_version) == (stream, 1, 3)
    assert [e.event_id for e in await backend.store.read_stream(stream)] == [e.event_id for e in a_events]
    assert await backend.count_readings(stream) == 10
    assert await backend.store.stored_offsets(group, TOPIC) == {0: 10}
    loaded = (await backend.store.load_drivers([stream]))[stream]
    assert loaded.snapshot is None and loaded.stream_head == 3


async def test_a_gap_after_the_head_is_a_conflict(backend, uid):
    stream = f"d-{uid}"
    await backend.store.write_batch(batch(f"g-{uid}", events=[event(stream, v) for v in (1, 2, 3)]))
    with pytest.raises(ConcurrencyConflict) as caught:
        await backend.store.write_batch(batch(f"g-{uid}", events=[event(stream, 5), event(stream, 6)]))
    assert (caught.value.expected_version, caught.value.found_version) == (4, 3)
    with pytest.raises(ConcurrencyConflict, match="gap"):
        await backend.store.write_batch(batch(f"g-{uid}", events=[event(stream, 4), event(stream, 6)]))
    with pytest.raises(ConcurrencyConflict):
        await backend.store.write_batch(batch(f"g-{uid}", events=[event(f"new-{uid}", 2)]))
    assert await backend.store.stream_head(stream) == 3
    assert await backend.store.stream_head(f"new-{uid}") == 0


async def test_two_first_appends_to_a_new_stream_at_once_exactly_one_wins(backend, uid):
    for round_no in range(3):
        stream = f"d-{uid}-{round_no}"
        writers = [
            batch(f"g-{uid}", items(f"r-{uid}-{round_no}-{w}", range(2_000)), [event(stream, 1), event(stream, 2)])
            for w in range(2)
        ]
        results = await asyncio.gather(*(backend.store.write_batch(b) for b in writers), return_exceptions=True)
        wins = [r for r in results if not isinstance(r, BaseException)]
        conflicts = [r for r in results if isinstance(r, ConcurrencyConflict)]
        assert (len(wins), len(conflicts)) == (1, 1), results
        winner = writers[results.index(wins[0])]
        assert [e.event_id for e in await backend.store.read_stream(stream)] == [e.event_id for e in winner.events]
        loser = writers[results.index(conflicts[0])]
        assert await backend.count_readings(loser.readings.driver_id[0].decode()) == 0


async def test_the_newest_snapshot_is_kept(backend, uid):
    driver, group = f"d-{uid}", f"g-{uid}"
    write = backend.store.write_batch
    assert (await write(batch(group, snapshots=[snapshot(driver, 10, 4, T0_MS)]))).snapshots_written == 1
    assert (await write(batch(group, snapshots=[snapshot(driver, 5, 9, T0_MS)]))).snapshots_written == 0
    assert (await write(batch(group, snapshots=[snapshot(driver, 10, 4, T0_MS)]))).snapshots_written == 0
    assert (await write(batch(group, snapshots=[snapshot(driver, 10, 5, T0_MS + 1)]))).snapshots_written == 1
    assert (await backend.store.load_drivers([driver]))[driver].snapshot == snapshot(driver, 10, 5, T0_MS + 1)
    two = [snapshot(driver, 30, 7, T0_MS + 3), snapshot(driver, 20, 6, T0_MS + 2)]
    assert (await write(batch(group, snapshots=two))).snapshots_written == 1
    assert (await backend.store.load_drivers([driver]))[driver].snapshot == two[0]


async def test_trips_are_inserted_once(backend, uid):
    trips = [trip(f"d-{uid}-{i % 3}", T0_MS + i * 1000) for i in range(20)]
    assert (await backend.store.write_batch(batch(f"g-{uid}", trips=trips))).trips_inserted == 20
    assert (await backend.store.write_batch(batch(f"g-{uid}", trips=trips[5:]))).trips_inserted == 0
    if backend.pool is not None:
        row = await backend.pool.fetchrow(
            "SELECT (extract(epoch FROM start_time) * 1000)::bigint AS start_ms, "
            "(extract(epoch FROM end_time) * 1000)::bigint AS end_ms, max_speed_kmh, harsh_braking_count, "
            "night_s, end_reason, harsh_braking_low_count, harsh_braking_high_count FROM trips WHERE trip_id = $1",
            trips[7].trip_id,
        )
        assert tuple(row) == (T0_MS + 7000, T0_MS + 7000 + 600_000, 72.5, 2, 12.5, "parked", 3, 1)


async def test_load_drivers_returns_timezone_snapshot_and_the_readings_after_it_in_offset_order(backend, uid):
    group = f"g-{uid}"
    drivers = [f"d-{uid}-{i:02d}" for i in range(30)]
    late_ts = T0_MS - 3_600_000  # stored after the snapshot, but older than its watermark - margin
    newer, older = [], []
    for i, d in enumerate(drivers):
        partition = i % 3
        newer += items(d, range(120, 125), partition)
        older += items(d, range(100, 119), partition) + items(d, [119], partition, ts_of=lambda _o: late_ts)
    snapshots = [snapshot(d, 104, 7, T0_MS + 104 * 1000, i % 3) for i, d in enumerate(drivers[:20])]
    # written out of offset order: the higher offsets first
    await backend.store.write_batch(batch(group, newer))
    await backend.store.write_batch(batch(group, older, [event(drivers[25], 1)], snapshots))
    await backend.set_timezone(drivers[0], "Europe/Berlin")

    loaded = await backend.store.load_drivers([*drivers, f"unknown-{uid}", drivers[0]])

    assert list(loaded) == [*drivers, f"unknown-{uid}"]
    by_driver = {d: [i for i in as_stored(older + newer) if i.reading.driver_id == d] for d in drivers}
    with_snapshot = loaded[drivers[3]]
    assert with_snapshot.snapshot == snapshots[3] and with_snapshot.stream_version == 7
    assert with_snapshot.readings == [i for i in by_driver[drivers[3]] if i.offset > 104 and i.offset != 119]
    assert [i.offset for i in with_snapshot.readings] == [*range(105, 119), *range(120, 125)]
    without = loaded[drivers[25]]
    assert (without.snapshot, without.stream_version, without.stream_head) == (None, 0, 1)
    assert without.readings == sorted(by_driver[drivers[25]], key=lambda i: i.offset)
    assert loaded[drivers[0]].timezone == "Europe/Berlin" and loaded[drivers[1]].timezone == "UTC"
    unknown = loaded[f"unknown-{uid}"]
    assert (unknown.timezone, unknown.snapshot, unknown.readings, unknown.stream_head) == ("UTC", None, [], 0)
    assert await backend.store.load_drivers([]) == {}


async def test_readings_in_an_old_and_a_future_month_create_their_partitions(backend, uid):
    driver = f"d-{uid}"
    old_ms, future_ms = 1_552_608_000_000, 1_941_235_200_000  # 2019-03-15, 2031-07-07
    readings = items(driver, [1], ts_of=lambda _o: old_ms) + items(driver, [2], ts_of=lambda _o: future_ms)
    result = await backend.store.write_batch(batch(f"g-{uid}", readings, [event(driver, 1, occurred_at_ms=future_ms)]))
    assert (result.readings_inserted, result.events_inserted) == (2, 1)
    assert (await backend.store.load_drivers([driver]))[driver].readings == as_stored(readings)
    if backend.pool is not None:
        names = ["telematics_events_y2019m03", "telematics_events_y2031m07", "domain_events_y2031m07"]
        for name in names:
            assert await backend.pool.fetchval("SELECT to_regclass($1) IS NOT NULL", name), name


async def test_nulls_and_data_objects_round_trip(backend, uid):
    driver = f"d-{uid}"
    readings = (
        items(driver, [1], speed_limit_kmh=None, lateral_accel_ms2=None, data=None)
        + items(driver, [2], speed_limit_kmh=80.0, lateral_accel_ms2=-0.75, data={"g": [0.1, 2.5], "note": "ü"})
        + items(driver, [3], speed_limit_kmh=None, lateral_accel_ms2=1.5, data={})
    )
    await backend.store.write_batch(batch(f"g-{uid}", readings))
    loaded = (await backend.store.load_drivers([driver]))[driver].readings
    assert loaded == as_stored(readings)
    assert [(i.reading.speed_limit_kmh, i.reading.lateral_accel_ms2, i.reading.data) for i in loaded] == [
        (None, None, None),
        (80.0, -0.75, {"g": [0.1, 2.5], "note": "ü"}),
        (None, 1.5, {}),
    ]


async def test_ten_thousand_readings_with_events_snapshots_and_trips_in_one_write(backend, uid):
    """The figure in docs/DATABASE.md §5: 10k readings (200 drivers), 100 events, 50 snapshots, 20 trips."""
    timings, readings_rate = [], []
    for round_no in range(6):
        drivers = [f"p-{uid}-{round_no}-{i:03d}" for i in range(200)]
        readings = [i for k, d in enumerate(drivers) for i in items(d, range(k * 50, k * 50 + 50), partition=k % 8)]
        events = [event(d, v) for d in drivers[:50] for v in (1, 2)]
        snapshots = [snapshot(d, k * 50 + 49, 2, T0_MS + 49_000) for k, d in enumerate(drivers[:50])]
        trips = [trip(d) for d in drivers[:20]]
        b = batch(f"g-{uid}", readings, events, snapshots, trips, {p: 10_000 * (round_no + 1) for p in range(8)})
        result = await backend.store.write_batch(b)
        assert (result.readings_inserted, result.events_inserted) == (10_000, 100)
        assert (result.snapshots_written, result.trips_inserted) == (50, 20)
        timings.append(result.elapsed_s)
        readings_rate.append(10_000 / result.readings_s if result.readings_s else float("inf"))
    warm = timings[1:]  # the first write of a connection prepares statements and creates the staging table
    print(
        f"\n[{backend.kind}] write_batch 10k readings + 100 events + 50 snapshots + 20 trips: "
        f"median {statistics.median(warm) * 1000:.1f} ms (min {min(warm) * 1000:.1f}, first {timings[0] * 1000:.1f}) "
        f"= {10_000 / statistics.median(warm):,.0f} readings/s overall; readings part "
        f"{statistics.median(readings_rate[1:]):,.0f} readings/s"
    )
    assert statistics.median(warm) < 2.0  # generous: a loaded 2-core CI box; see docs for the typical figure


async def test_each_event_is_stored_with_the_request_id_of_the_reading_that_caused_it(backend, uid):
    driver, other, group = f"d-{uid}", f"o-{uid}", f"g-{uid}"
    readings = items(driver, range(10, 13), partition=2) + items(other, [10, 11], partition=3)
    # offset 10 exists in both partitions: the event's driver decides which reading caused it
    request_ids = {(2, 10): f"req-a-{uid}", (2, 11): f"req-a-{uid}", (3, 10): f"req-b-{uid}"}
    events = [event(driver, 1, seq=10), event(driver, 2, seq=12), event(driver, 3, seq=11),
              event(other, 1, seq=10), event(other, 2, seq=11)]  # fmt: skip
    b = batch(group, readings, events, offsets={2: 13, 3: 12}, request_ids=request_ids)

    await backend.store.write_batch(b)
    await backend.store.write_batch(b)  # a retry changes nothing

    assert [e.request_id for e in await backend.store.read_stream(driver)] == [f"req-a-{uid}", None, f"req-a-{uid}"]
    assert [e.request_id for e in await backend.store.read_stream(other)] == [f"req-b-{uid}", None]


async def test_events_of_a_batch_without_request_ids_have_none(backend, uid):
    driver = f"d-{uid}"
    await backend.store.write_batch(batch(f"g-{uid}", items(driver, [1]), [event(driver, 1, seq=1)]))
    assert [e.request_id for e in await backend.store.read_stream(driver)] == [None]
