"""The shard's decisions without Ray: batch boundaries, activation from snapshot + replay and the
number of shards never change the events, their ids, stream versions or payload bytes."""

from __future__ import annotations

import itertools
from collections import defaultdict

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.batches import ShardItem
from domain.rules import TripRules
from domain.shard_core import DriverSlot, activate, fold, fold_batch, group_by_driver, idle_drivers, shard_of
from domain.simulator import Population, simulate_all, to_readings
from domain.trip_machine import DriverState

START_MS = 1_780_000_000_000
RULES = TripRules()


@pytest.fixture(scope="module")
def stream() -> list[ShardItem]:
    """Four drivers, half a day, as one partition's items in arrival (offset) order."""
    population = Population.generate(4, seed=5)
    readings = to_readings(simulate_all(population, START_MS, duration_s=12 * 3600, seed=5))
    return [ShardItem(reading=r, partition=0, offset=i) for i, r in enumerate(readings)]


def one_pass(items: list[ShardItem], snapshot_every: int = 10**9):
    slots: dict[str, DriverSlot] = {}
    for driver in {i.reading.driver_id for i in items}:
        slots[driver] = DriverSlot(state=DriverState.initial(driver))
    out = fold_batch(slots, group_by_driver(items), RULES, snapshot_every, shard=0, batch_no=1)
    return out.events, slots


def test_every_shard_index_is_stable_and_in_range():
    assert shard_of("driver0001", 4) == shard_of("driver0001", 4)
    assert {shard_of(f"driver{i:04d}", 4) for i in range(200)} == {0, 1, 2, 3}


def test_stream_versions_are_contiguous_per_driver(stream):
    events, slots = one_pass(stream)
    by_stream = defaultdict(list)
    for e in events:
        by_stream[e.stream_id].append(e.stream_version)
    assert events, "half a day of driving must produce trips"
    for stream_id, versions in by_stream.items():
        assert versions == list(range(1, len(versions) + 1))
        assert slots[stream_id].stream_version == len(versions)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cuts=st.lists(st.integers(min_value=1, max_value=10**6), max_size=8))
def test_batch_boundaries_do_not_change_the_events(stream, cuts):
    expected, _ = one_pass(stream)
    bounds = sorted({c % len(stream) for c in cuts} | {0, len(stream)})
    slots: dict[str, DriverSlot] = {}
    got = []
    for n, (lo, hi) in enumerate(itertools.pairwise(bounds)):
        batch = stream[lo:hi]
        for driver in {i.reading.driver_id for i in batch} - slots.keys():
            slots[driver] = DriverSlot(state=DriverState.initial(driver))
        got.extend(fold_batch(slots, group_by_driver(batch), RULES, 10**9, shard=0, batch_no=n).events)
    assert sorted(got, key=_key) == sorted(expected, key=_key)


def _key(event):
    return (event.stream_id, event.stream_version)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cut=st.integers(min_value=1, max_value=10**6), snapshot_every=st.integers(min_value=50, max_value=5000))
def test_activation_from_snapshot_and_replay_continues_exactly(stream, cut, snapshot_every):
    """Crash after `cut` items: the durable data is every item before the cut and the last snapshot;
    a new shard activates from it, and the rest of the stream yields exactly the events of one pass."""
    expected, _ = one_pass(stream)
    cut %= len(stream)
    driver = stream[0].reading.driver_id
    mine = [i for i in stream if i.reading.driver_id == driver]
    cut = min(cut, len(mine) - 1)
    slot = DriverSlot(state=DriverState.initial(driver))
    snapshot = None
    before = []
    for item in mine[:cut]:  # fold item by item, snapshots when due, as batches of one
        result = fold(slot, [item], RULES, snapshot_every)
        before.extend(result.events)
        snapshot = result.snapshot or snapshot
    replay = [i for i in mine[:cut] if snapshot is None or i.offset > snapshot.source_offset]
    restored = activate(driver, "UTC", snapshot, replay, RULES)
    assert restored.stream_version == slot.stream_version
    assert restored.state.to_bytes() == slot.state.to_bytes()
    after = fold(restored, mine[cut:], RULES, snapshot_every).events
    assert before + after == [e for e in expected if e.stream_id == driver]


def test_a_trip_end_makes_a_snapshot_due(stream):
    driver = stream[0].reading.driver_id
    slot = DriverSlot(state=DriverState.initial(driver))
    result = fold(slot, [i for i in stream if i.reading.driver_id == driver], RULES, snapshot_every=10**9)
    assert result.trips and result.snapshot is not None
    assert result.snapshot.source_offset == slot.source_offset
    assert result.live is not None and result.live.seq == slot.source_offset


def test_idle_drivers_are_the_ones_untouched_long_enough():
    slots = {
        "a": DriverSlot(state=DriverState.initial("a"), last_batch=1),
        "b": DriverSlot(state=DriverState.initial("b"), last_batch=9),
    }
    assert idle_drivers(slots, batch_no=10, idle_batches=5) == ["a"]
