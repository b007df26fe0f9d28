"""What both event stores promise (PostgresEventStore and the InMemoryEventStore fake), as data and pure checks.

No I/O here: the result and activation types, the conflict error, and the rules that decide, for one
stream, which events of a batch are a retry (already stored: skipped) and which are new — so the real
store and the fake cannot drift apart. docs/DATABASE.md §5 explains the guarantees.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import pairwise

import numpy as np

from domain.batches import NewEvent, PartitionOffset, PersistBatch, ShardItem, SnapshotRow

DEFAULT_REPLAY_MARGIN_MS = 10 * 60 * 1000
"""How far before a snapshot's `last_ts_ms` activation still looks for readings stored after it.

`last_ts_ms` is the reorder watermark of the trip machine: a reading stored after the snapshot but with
`ts` at or below it was late for the state machine (counted, never folded in), so skipping it changes
no event. The margin only bounds the scan (partition pruning on `ts`); any value >= 0 is correct."""


class ConcurrencyConflict(Exception):
    """Another writer appended to `stream_id` first (or this batch's versions do not continue the stream).

    `expected_version` is the head this batch assumed (its first version - 1); `found_version` the head
    stored. Nothing of the batch was written. Not retryable as is: the writer's state is stale."""

    def __init__(self, stream_id: str, expected_version: int, found_version: int, detail: str) -> None:
        self.stream_id = stream_id
        self.expected_version = expected_version
        self.found_version = found_version
        self.detail = detail
        super().__init__(
            f"stream {stream_id!r}: batch expected head {expected_version}, found {found_version}: {detail}"
        )

    def __reduce__(self):
        # Crosses process boundaries (Ray re-raises it in the consumer): rebuild from the fields.
        return (type(self), (self.stream_id, self.expected_version, self.found_version, self.detail))


@dataclass(frozen=True, slots=True)
class WriteResult:
    """Counts of one `write_batch`. `*_duplicate`/`events_skipped` are rows already stored (a retry);
    `snapshots_written` counts inserted or replaced snapshots; `readings_s` is the readings part (COPY and
    insert); `readings_staged` says the readings went through the staging table (see PostgresEventStore)."""

    readings_inserted: int = 0
    readings_duplicate: int = 0
    events_inserted: int = 0
    events_skipped: int = 0
    snapshots_written: int = 0
    trips_inserted: int = 0
    claims_opened: int = 0  # claims the batch's crashes opened (domain.claims; a retry opens none)
    elapsed_s: float = 0.0
    readings_s: float = 0.0
    readings_staged: bool = False  # PostgreSQL: duplicates were absorbed through the staging table


@dataclass(frozen=True, slots=True)
class StoredDriver:
    """What activation of one driver needs (see `load_drivers`).

    - `timezone`: from `drivers`, 'UTC' when the driver has no row there;
    - `snapshot`: the stored snapshot, or None (none yet, or one written before reading positions existed);
    - `readings`: stored readings after the snapshot (all of them when None), in Kafka offset order;
    - `stream_version`: the version to continue from = `snapshot.stream_version`, or 0 without a snapshot;
    - `stream_head`: the stream's stored head. Replaying `readings` from `stream_version` re-emits exactly
      the events stored up to it (same ids, same versions): discard them (or resubmit: they are skipped).
    """

    driver_id: str
    timezone: str = "UTC"
    snapshot: SnapshotRow | None = None
    readings: list[ShardItem] = field(default_factory=list)
    stream_version: int = 0
    stream_head: int = 0


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """One `domain_events` row as read back (`read_stream`); `payload` is the decoded JSON."""

    event_id: uuid.UUID
    stream_id: str
    stream_version: int
    event_type: str
    occurred_at_ms: int
    payload: object
    request_id: str | None = None


def events_by_stream(events: Iterable[NewEvent]) -> dict[str, list[NewEvent]]:
    """The batch's events per stream, sorted by version; exact repeats (same version and id) dropped."""
    grouped: dict[str, dict[tuple[int, bytes], NewEvent]] = defaultdict(dict)
    for event in events:
        grouped[event.stream_id].setdefault((event.stream_version, event.event_id.bytes), event)
    return {stream: [grouped[stream][k] for k in sorted(grouped[stream])] for stream in sorted(grouped)}


def request_ids_by_event(batch: PersistBatch) -> dict[uuid.UUID, str]:
    """event id -> the request id of the reading that caused the event; events without one are absent.

    An event's `seq` is the offset of the reading whose step emitted it, in its driver's partition (stream id
    = driver id; one Kafka key, one partition), so the reading is found by (partition, offset) in this batch.
    Pure; free when no reading of the batch carried a request id."""
    index = batch.request_id_index
    if not len(index) or not batch.request_ids:
        return {}
    columns = batch.readings
    marked = np.flatnonzero(index >= 0)
    partitions = columns.source_partition[marked].tolist()
    offsets = columns.source_offset[marked].tolist()
    ids = [batch.request_ids[i] for i in index[marked].tolist()]
    at = dict(zip(zip(partitions, offsets, strict=True), ids, strict=True))
    partition_of = {d.decode(): p for d, p in zip(columns.driver_id[marked].tolist(), partitions, strict=True)}
    out = {}
    for event in batch.events:
        partition = partition_of.get(event.stream_id)
        found = None if partition is None else at.get((partition, event.seq))
        if found is not None:
            out[event.event_id] = found
    return out


def versions_to_verify(events: Sequence[NewEvent], head: int) -> list[int]:
    """Versions of the batch at or below the stored head: they must already hold the same event."""
    return [e.stream_version for e in events if e.stream_version <= head]


def new_events_after_head(
    stream_id: str, events: Sequence[NewEvent], head: int, stored_ids: Mapping[int, uuid.UUID]
) -> list[NewEvent]:
    """The events of `stream_id` to append on top of `head`; raises ConcurrencyConflict unless the batch
    continues the stream: versions contiguous, those <= head already stored with the same event id (a
    retried batch), the rest starting at head + 1. `events` come from `events_by_stream`."""
    if not events:
        return []
    expected = events[0].stream_version - 1
    for before, after in pairwise(events):
        if after.stream_version != before.stream_version + 1:
            what = "two events" if after.stream_version == before.stream_version else "a gap"
            raise ConcurrencyConflict(
                stream_id, expected, head, f"the batch has {what} at version {after.stream_version}"
            )
    fresh = []
    for event in events:
        if event.stream_version > head:
            fresh.append(event)
            continue
        stored = stored_ids.get(event.stream_version)
        if stored != event.event_id:
            holder = "no event" if stored is None else f"event {stored}"
            raise ConcurrencyConflict(
                stream_id,
                expected,
                head,
                f"version {event.stream_version} holds {holder}, the batch has event {event.event_id}",
            )
    if fresh and fresh[0].stream_version != head + 1:
        raise ConcurrencyConflict(
            stream_id, expected, head, f"the batch starts at version {fresh[0].stream_version}, a gap after the head"
        )
    return fresh


def newest_snapshots(snapshots: Iterable[SnapshotRow]) -> list[SnapshotRow]:
    """One snapshot per driver (the newest by source offset, then stream version), in driver order."""
    best: dict[str, SnapshotRow] = {}
    for snap in snapshots:
        old = best.get(snap.driver_id)
        if old is None or snapshot_is_newer(snap, old):
            best[snap.driver_id] = snap
    return [best[d] for d in sorted(best)]


def snapshot_is_newer(new: SnapshotRow, old: SnapshotRow) -> bool:
    """The rule of the snapshot upsert: a greater source offset wins, on a tie a greater stream version.
    The offset decides because activation replays the readings after it."""
    return (new.source_offset, new.stream_version) > (old.source_offset, old.stream_version)


def highest_offsets(offsets: Iterable[PartitionOffset]) -> list[PartitionOffset]:
    """One entry per (topic, partition), the highest `next_offset`, sorted (a fixed lock order)."""
    best: dict[tuple[str, int], PartitionOffset] = {}
    for o in offsets:
        key = (o.topic, o.partition)
        held = best.get(key)
        if held is None or (o.next_offset, o.log_ms or 0) > (held.next_offset, held.log_ms or 0):
            best[key] = o
    return [best[key] for key in sorted(best)]


def unique_in_order(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(values))
