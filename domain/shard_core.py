"""What a DriverShard decides, as pure code: routing, activation, folding a batch, snapshot due.

A shard owns many drivers ("virtual actors", DESIGN.md §1). Each active driver is a `DriverSlot`: the
trip machine's state plus its event-stream head and the Kafka position of the last reading folded
in. Readings are folded in Kafka offset order — the arrival order, identical for every batch size;
the trip machine's reorder buffer puts them in timestamp order (sorting a batch by ts here would make
late-reading decisions depend on batch boundaries).

Activation = snapshot (or the initial state) + the stored readings after it, folded with their events
discarded: those events were stored in the same transaction as the readings, and because ids and
versions are deterministic the replay lands exactly on the stored stream head.
"""

from __future__ import annotations

import zlib
from collections import defaultdict
from collections.abc import Iterable, Sequence

import msgspec

from domain.batches import LivePosition, NewEvent, ShardItem, ShardOutput, SnapshotRow
from domain.driver_state import NEVER_MS, DriverState
from domain.events import TripDiscarded, TripEnded, encode_event, event_type
from domain.rules import SNAPSHOT_FORMAT_VERSION, TripRules
from domain.trip_machine import pass_log_time, step_arrived


def shard_of(driver_id: str, shards: int) -> int:
    """Stable across processes and restarts (Python's hash() is salted per process)."""
    return zlib.crc32(driver_id.encode()) % shards


class DriverSlot(msgspec.Struct, kw_only=True):
    """One active driver inside a shard. `source_offset` = -1 before any reading."""

    state: DriverState
    stream_version: int = 0
    source_partition: int = -1
    source_offset: int = -1
    since_snapshot: int = 0
    last_batch: int = 0  # shard batch counter when last touched (passivation)
    snapshot_open: bool = False  # the `open` of the newest snapshot: a change makes the next one due


def activate(
    driver_id: str,
    timezone: str,
    snapshot: SnapshotRow | None,
    replay: Iterable[ShardItem],
    rules: TripRules,
) -> DriverSlot:
    """Rebuild a driver from durable data. `replay` must be the stored readings after the snapshot,
    in offset order; their events are already stored, so only the stream head advances."""
    if snapshot is not None:
        slot = DriverSlot(
            state=DriverState.from_bytes(snapshot.state),
            stream_version=snapshot.stream_version,
            source_partition=snapshot.source_partition,
            source_offset=snapshot.source_offset,
            snapshot_open=snapshot.open,
        )
    else:
        slot = DriverSlot(state=DriverState.initial(driver_id, timezone))
    for item in replay:
        if item.offset <= slot.source_offset and item.partition == slot.source_partition:
            continue  # already folded into the snapshot
        slot.state, events = step_arrived(slot.state, item.reading, item.arrived_ms, rules)
        slot.stream_version += len(events)
        slot.source_partition, slot.source_offset = item.partition, item.offset
        slot.since_snapshot += 1
    return slot


class FoldResult(msgspec.Struct):
    events: list[NewEvent]
    snapshot: SnapshotRow | None
    trips: list
    live: LivePosition | None
    late_readings: int


def fold(slot: DriverSlot, items: Sequence[ShardItem], rules: TripRules, snapshot_every: int) -> FoldResult:
    """Fold one driver's items (offset order) into its slot; the new events carry stream versions and the
    offset of the reading that emitted them. A snapshot is due after `snapshot_every` readings or when a
    trip closed (the idle state is small and a closed trip bounds the next replay)."""
    new_events: list[NewEvent] = []
    trips = []
    late_before = slot.state.late_readings
    trip_closed = False
    stream_id = slot.state.driver_id
    for item in items:
        slot.state, events = step_arrived(slot.state, item.reading, item.arrived_ms, rules)
        trip_closed |= _append_events(slot, events, item.offset, new_events, trips)
        slot.source_partition, slot.source_offset = item.partition, item.offset
        slot.since_snapshot += 1
    snapshot = None
    if items and (trip_closed or slot.since_snapshot >= snapshot_every or slot.state.is_open != slot.snapshot_open):
        snapshot = snapshot_of(slot)
        slot.since_snapshot = 0
    live = None
    if items:
        last = items[-1]
        r = last.reading
        live = LivePosition(
            driver_id=stream_id,
            seq=last.offset,
            ts_ms=r.ts_ms,
            lat=r.lat,
            lon=r.lon,
            speed_kmh=r.speed_kmh,
            heading=r.heading,
            trip_id=slot.state.open_trip_id,
        )
    return FoldResult(
        events=new_events,
        snapshot=snapshot,
        trips=trips,
        live=live,
        late_readings=slot.state.late_readings - late_before,
    )


def _append_events(slot: DriverSlot, events, seq: int, new_events: list[NewEvent], trips: list) -> bool:
    """Number the events in the driver's stream; True when one of them closed a trip."""
    closed = False
    stream_id = slot.state.driver_id
    for event in events:
        slot.stream_version += 1
        new_events.append(
            NewEvent(
                event_id=event.event_id,
                stream_id=stream_id,
                stream_version=slot.stream_version,
                event_type=event_type(event),
                occurred_at_ms=event.occurred_at_ms,
                payload_json=encode_event(event),
                seq=seq,
            )
        )
        if isinstance(event, TripEnded):
            trips.append(event.summary)
            closed = True
        elif isinstance(event, TripDiscarded):
            closed = True
    return closed


def pass_log_times(slots: dict[str, DriverSlot], log_times: dict[int, int], rules: TripRules) -> ShardOutput:
    """The end of a batch: every open driver of these partitions learns its partition's log time (a silent device's
    trip closes). The events carry the seq of the driver's last reading; a driver that emitted any gets a snapshot,
    so an activation never has to replay a batch end (docs/DOMAIN.md §3)."""
    events: list[NewEvent] = []
    trips: list = []
    snapshots: list[SnapshotRow] = []
    if not log_times:
        return ShardOutput(shard=-1)
    waiting = [
        driver_id for driver_id, slot in slots.items()
        if slot.state.is_open and log_times.get(slot.source_partition, NEVER_MS) > slot.state.arrival_ms
    ]  # fmt: skip
    for driver_id in sorted(waiting):
        slot = slots[driver_id]
        slot.state, emitted = pass_log_time(slot.state, log_times[slot.source_partition], rules)
        if emitted:
            _append_events(slot, emitted, slot.source_offset, events, trips)
            snapshots.append(snapshot_of(slot))
            slot.since_snapshot = 0
    return ShardOutput(shard=-1, events=events, snapshots=snapshots, trips=trips)


def snapshot_of(slot: DriverSlot) -> SnapshotRow:
    """`last_ts_ms` is the reorder watermark: a reading stored later with an older ts is late anyway,
    so activation may skip it (the event store prunes partitions with it)."""
    watermark = slot.state.watermark_ms
    slot.snapshot_open = slot.state.is_open
    return SnapshotRow(
        driver_id=slot.state.driver_id,
        stream_version=slot.stream_version,
        state=slot.state.to_bytes(),
        state_format=SNAPSHOT_FORMAT_VERSION,
        last_ts_ms=watermark if watermark != NEVER_MS else 0,
        source_partition=slot.source_partition,
        source_offset=slot.source_offset,
        open=slot.snapshot_open,
    )


def group_by_driver(items: Iterable[ShardItem]) -> dict[str, list[ShardItem]]:
    """Items per driver, each list in the order given (Kafka offset order within a partition)."""
    grouped: dict[str, list[ShardItem]] = defaultdict(list)
    for item in items:
        grouped[item.reading.driver_id].append(item)
    return grouped


def fold_batch(
    slots: dict[str, DriverSlot],
    items_by_driver: dict[str, list[ShardItem]],
    rules: TripRules,
    snapshot_every: int,
    shard: int,
    batch_no: int,
) -> ShardOutput:
    """Fold every driver of a batch (all must be active in `slots`); outputs in driver-id order."""
    events: list[NewEvent] = []
    snapshots: list[SnapshotRow] = []
    trips = []
    live: list[LivePosition] = []
    late = 0
    for driver_id in sorted(items_by_driver):
        slot = slots[driver_id]
        slot.last_batch = batch_no
        result = fold(slot, items_by_driver[driver_id], rules, snapshot_every)
        events.extend(result.events)
        trips.extend(result.trips)
        late += result.late_readings
        if result.snapshot is not None:
            snapshots.append(result.snapshot)
        if result.live is not None:
            live.append(result.live)
    return ShardOutput(shard=shard, events=events, snapshots=snapshots, trips=trips, live=live, late_readings=late)


def idle_drivers(slots: dict[str, DriverSlot], batch_no: int, idle_batches: int) -> list[str]:
    """Drivers untouched for `idle_batches` batches and waiting for nothing: candidates to passivate (they
    reactivate from storage). An open driver stays: only log time passing in this shard can close it."""
    return [d for d, slot in slots.items() if batch_no - slot.last_batch >= idle_batches and not slot.state.is_open]
