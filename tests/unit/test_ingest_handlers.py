"""The ingest use cases (usecases/ingest.py) over the in-memory fakes: no Ray, no PostgreSQL, no Redis."""

from __future__ import annotations

import numpy as np
import pytest
from structlog.contextvars import get_contextvars

from domain.batches import PartitionOffset, PersistBatch, ReadingColumns, ShardItem
from domain.log_time import LogClock
from domain.rules import TripRules
from domain.scoring import ended_trips
from domain.simulator import Population, simulate_all, to_readings
from storage.event_store_contract import ConcurrencyConflict
from storage.memory.event_store import InMemoryEventStore
from storage.memory.projector import InMemoryProjector
from tests.contracts.event_store_builders import batch, event, items
from tests.contracts.projection_builders import newest_position_seq
from usecases.ingest import PersistBatchHandler, ShardBatchHandler
from usecases.ports.scorer_sink import RecordingScorerSink

START_MS = 1_780_000_000_000
GROUP, TOPIC = "ingest-test", "telematics.events"


@pytest.fixture(scope="module")
def stream() -> list[ShardItem]:
    """Four drivers, half a day (~10k readings, five trips end in it), as one partition's items in offset order."""
    population = Population.generate(4, seed=5)
    readings = to_readings(simulate_all(population, START_MS, duration_s=12 * 3600, seed=5))
    return arrived_in_one_partition(readings)


def arrived_in_one_partition(readings) -> list[ShardItem]:
    """Readings as one partition's items in offset order, each with the log time it arrived at (as a consumer
    stamps them: domain.log_time)."""
    before = LogClock().advance((0, r.ts_ms, False) for r in readings)
    pairs = enumerate(zip(readings, before, strict=True))
    return [ShardItem(r, 0, i, r.ts_ms if b is None else b) for i, (r, b) in pairs]


def log_time_after(chunk: list[ShardItem]) -> dict[int, int]:
    return {0: max(max(i.reading.ts_ms, i.arrived_ms) for i in chunk)}


class CountingStore(InMemoryEventStore):
    def __init__(self) -> None:
        super().__init__()
        self.loads: list[list[str]] = []
        self.context_at_write: list[dict] = []

    async def load_drivers(self, driver_ids, *args):
        self.loads.append(list(driver_ids))
        return await super().load_drivers(driver_ids, *args)

    async def write_batch(self, b):
        self.context_at_write.append(get_contextvars())
        return await super().write_batch(b)


class RecordingLog:
    def __init__(self) -> None:
        self.lines: list[tuple[str, str, dict]] = []

    def _record(self, level: str, event: str, **kw) -> None:
        self.lines.append((level, event, {**get_contextvars(), **kw}))

    def info(self, event: str, **kw) -> None:
        self._record("info", event, **kw)

    def debug(self, event: str, **kw) -> None:
        self._record("debug", event, **kw)

    def warning(self, event: str, **kw) -> None:
        self._record("warning", event, **kw)


def shard(store, idle_batches: int = 1000, log=None) -> ShardBatchHandler:
    return ShardBatchHandler(store, TripRules(), shard=0, snapshot_every_events=500, idle_batches=idle_batches, log=log)


def persist_batch(chunk: list[ShardItem], output, request_ids: dict[tuple[int, int], str] | None = None):
    ids = tuple(sorted(set((request_ids or {}).values())))
    extra = {}
    if ids:
        index = [ids.index(request_ids[(i.partition, i.offset)]) if (i.partition, i.offset) in request_ids else -1
                 for i in chunk]  # fmt: skip
        extra = {"request_ids": ids, "request_id_index": np.array(index, dtype=np.int32)}
    return PersistBatch(
        consumer_group=GROUP,
        readings=ReadingColumns.from_readings([i.reading for i in chunk], [0] * len(chunk), [i.offset for i in chunk],
                                              [i.arrived_ms for i in chunk]),
        offsets=(PartitionOffset(TOPIC, 0, chunk[-1].offset + 1),),
        outputs=(output,),
        **extra,
    )


async def run(stream, store, projector, sink, batch_size: int, idle_batches: int = 1000):
    folder = shard(store, idle_batches)
    persister = PersistBatchHandler(store, projector, sink)
    dones = []
    for start in range(0, len(stream), batch_size):
        chunk = stream[start : start + batch_size]
        done = await folder.handle(chunk, log_times=log_time_after(chunk))
        await persister.handle(persist_batch(chunk, done.output))
        dones.append(done)
    return folder, dones


async def test_missing_drivers_are_activated_in_one_read_per_batch(stream):
    store = CountingStore()
    folder, dones = await run(stream, store, InMemoryProjector(), None, batch_size=2_000)
    drivers = sorted({i.reading.driver_id for i in stream})
    first = {i.reading.driver_id for i in stream[:2_000]}
    assert len(first) > 1 and sorted(store.loads[0]) == sorted(first)  # every new driver of a batch in one read
    assert sum(d.activated for d in dones) == len(drivers) == len({d for load in store.loads for d in load})
    assert len(store.loads) <= len(drivers)
    assert sorted(folder.slots) == drivers


async def test_idle_drivers_are_passivated_and_come_back_from_the_store_where_they_left(stream):
    reference = InMemoryEventStore()
    await run(stream, reference, InMemoryProjector(), None, batch_size=200)
    store = CountingStore()
    _, dones = await run(stream, store, InMemoryProjector(), None, batch_size=200, idle_batches=2)
    assert sum(d.passivated for d in dones) > 0
    assert sum(d.activated for d in dones) > len({i.reading.driver_id for i in stream})  # some came back
    for driver in {i.reading.driver_id for i in stream}:  # the same log as without passivation
        assert [e.event_id for e in await store.read_stream(driver)] == [
            e.event_id for e in await reference.read_stream(driver)
        ]


async def test_eviction_forgets_drivers_by_id_and_by_partition(stream):
    folder = shard(InMemoryEventStore())
    await folder.handle(stream[:3_000])
    active = sorted(folder.slots)
    assert len(active) > 1
    assert folder.evict(active[:1]) == 1 and active[0] not in folder.slots
    assert folder.evict_partitions([7]) == 0
    assert folder.evict_partitions([0]) == len(active) - 1 and not folder.slots
    await folder.handle(stream[500:600])
    active = len(folder.slots)
    assert active and folder.evict() == active and not folder.slots


async def test_a_retried_batch_is_stored_once_and_projected_without_moving_back(stream):
    store, projector = InMemoryEventStore(), InMemoryProjector()
    persister = PersistBatchHandler(store, projector)
    chunk = stream[:3_000]
    done = await shard(store).handle(chunk)
    b = persist_batch(chunk, done.output)
    first = await persister.handle(b)
    second = await persister.handle(b)
    assert first.result.readings_inserted == len(chunk) and first.result.events_inserted == len(done.output.events)
    assert (second.result.readings_inserted, second.result.events_inserted) == (0, 0)
    assert second.result.events_skipped == len(done.output.events)
    assert sum(len(r) for r in store.readings.values()) == len(chunk)
    newest = {live.driver_id: live.seq for live in done.output.live}
    assert {d: newest_position_seq(projector.recent(d)) for d in newest} == newest


async def test_a_conflicting_batch_leaves_nothing_and_is_neither_projected_nor_scored():
    store, projector, sink = InMemoryEventStore(), InMemoryProjector(), RecordingScorerSink()
    persister = PersistBatchHandler(store, projector, sink)
    driver = "d-conflict"
    await store.write_batch(batch(GROUP, items(driver, range(5)), [event(driver, v) for v in (1, 2)], offsets={0: 5}))
    stale = batch(GROUP, items(driver, range(5, 10)), [event(driver, 2)], offsets={0: 10})
    with pytest.raises(ConcurrencyConflict):
        await persister.handle(stale)
    assert len(store.readings[driver]) == 5 and await store.stream_head(driver) == 2
    assert await store.stored_offsets(GROUP, "telematics.events") == {0: 5}
    assert (projector.batches, sink.submitted) == (0, [])


async def test_the_scorer_sink_receives_the_trips_that_ended(stream):
    sink = RecordingScorerSink()
    store = InMemoryEventStore()
    persister = PersistBatchHandler(store, InMemoryProjector(), sink)
    folder = shard(store)
    expected, handed = [], 0
    for start in range(0, len(stream), 2_500):
        chunk = stream[start : start + 2_500]
        done = await folder.handle(chunk)
        expected += [ended_trips([done.output])] if done.output.trips else []
        handed += (await persister.handle(persist_batch(chunk, done.output))).trips_handed
    assert expected, "half a day of driving must end trips"
    assert sink.submitted == expected
    assert handed == sum(len(t) for t in expected)


async def test_a_failing_scorer_sink_does_not_fail_the_batch(stream):
    class BrokenSink:
        def submit(self, trips):
            raise RuntimeError("scorer actor is dead")

    store, log = InMemoryEventStore(), RecordingLog()
    persister = PersistBatchHandler(store, InMemoryProjector(), BrokenSink(), log=log)
    folder = shard(store)
    trips_seen = 0
    for start in range(0, len(stream), 2_500):
        chunk = stream[start : start + 2_500]
        done = await folder.handle(chunk)
        result = await persister.handle(persist_batch(chunk, done.output))
        assert result.trips_handed == 0
        trips_seen += len(done.output.trips)
    assert trips_seen and len(store.trips) == trips_seen
    warnings = [e for level, e, _ in log.lines if level == "warning"]
    assert warnings and set(warnings) == {"scorer_unreachable"}


async def test_store_calls_go_through_the_given_retry(stream):
    calls: list[str] = []

    async def retry(operation, *, what):
        calls.append(what)
        return await operation()

    store = InMemoryEventStore()
    folder = ShardBatchHandler(store, TripRules(), shard=0, snapshot_every_events=500, idle_batches=10, retry=retry)
    done = await folder.handle(stream[:100])
    await PersistBatchHandler(store, InMemoryProjector(), retry=retry).handle(persist_batch(stream[:100], done.output))
    assert calls == ["list open drivers", "load drivers", "write batch to PostgreSQL", "publish projections to Redis"]


async def test_events_and_log_lines_carry_the_request_ids_of_their_readings(stream):
    store, log = CountingStore(), RecordingLog()
    folder = shard(store, log=log)
    persister = PersistBatchHandler(store, InMemoryProjector(), log=log)
    chunk = stream[:4_000]
    request_of = {(0, i.offset): f"req-{i.offset // 1000}" for i in chunk}  # four API requests
    done = await folder.handle(chunk, request_ids=sorted(set(request_of.values())))
    await persister.handle(persist_batch(chunk, done.output, request_of))

    assert done.output.events, "the first hours must start trips"
    by_id = {e.event_id: e for e in done.output.events}
    for driver in {e.stream_id for e in done.output.events}:
        for stored in await store.read_stream(driver):
            assert stored.request_id == f"req-{by_id[stored.event_id].seq // 1000}"
    everyone = ["req-0", "req-1", "req-2", "req-3"]
    assert store.context_at_write == [{"request_ids": everyone}]  # bound while the store works (retry logs too)
    lines = {event: kw for _, event, kw in log.lines}
    assert lines["shard_batch_folded"]["request_ids"] == everyone
    assert lines["batch_persisted"]["request_ids"] == everyone
    assert get_contextvars() == {}  # unbound after the batch
