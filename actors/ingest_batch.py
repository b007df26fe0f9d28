"""Turning one polled Kafka batch into what the shards and the persistence actor need.

Runs on the consumer's Kafka thread (CPU work off the actor's event loop). Decoding and validation
are the domain's (`decode_batch`); here we only attach Kafka positions, route by driver, build the
columns for COPY and the dead letters for what the domain rejected. Each reading keeps the request id of
its message (`x-request-id` header): `PersistBatch.request_id_index` maps it by position, so the event store
can give every event the request id of the reading that caused it (`seq` = that reading's offset).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field

import numpy as np
from confluent_kafka import Message

from domain import dead_letters as dl
from domain.batches import (
    PartitionOffset,
    PersistBatch,
    ReadingColumns,
    ShardItem,
    encode_shard_items,
)
from domain.log_time import LOG_TICK_HEADER, LogClock, decode_tick
from domain.privacy import strip_drivers
from domain.rules import ValidationRules
from domain.shard_core import shard_of
from domain.validation import Rejection, decode_batch

REQUEST_ID_HEADER = dl.REQUEST_ID


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """The original bytes and why they were refused, with where they came from."""

    value: bytes
    key: bytes | None
    headers: list[tuple[str, bytes]]


@dataclass(frozen=True, slots=True)
class PreparedBatch:
    """`shard_request_ids[s]`: the distinct request ids of the readings routed to shard s (its log lines)."""

    persist: PersistBatch
    shard_blobs: dict[int, bytes]
    dead_letters: list[DeadLetter]
    log_times: dict[int, int] = field(default_factory=dict)  # partition -> log time after this batch
    shard_request_ids: dict[int, tuple[str, ...]] = field(default_factory=dict)


def prepare_batch(
    messages: Sequence[Message], shards: int, consumer_group: str, rules: ValidationRules, now_s: float,
    clock: LogClock | None = None, stripped: AbstractSet[str] = frozenset(),
) -> PreparedBatch:
    """`clock`: the consumer's log clock, advanced here over the batch's valid readings in offset order (each
    reading carries the log time it arrived at; the offsets carry the log time they reach). `stripped`: drivers
    whose readings lose their positions here, before shards, storage or live feeds see them (docs/PRIVACY.md §3)."""
    clock = LogClock() if clock is None else clock
    ticks = {i: t for i, m in enumerate(messages) if (t := log_tick_of(m)) is not None}
    candidates = [i for i in range(len(messages)) if i not in ticks]  # everything else is a reading or refused
    values = [messages[i].value() or b"" for i in candidates]
    decoded, rejects = decode_batch(values, int(now_s * 1000), rules)
    readings = strip_drivers(decoded, stripped)
    rejected = {candidates[i]: r for i, r in rejects}
    kept = [i for i in candidates if i not in rejected]
    accepted = [messages[i] for i in kept]
    partitions = [m.partition() for m in accepted]
    offsets = [m.offset() for m in accepted]
    request_of_message = [request_id(m) for m in messages]
    request_of = [request_of_message[i] for i in kept]  # per reading, so per (partition, offset)
    reading_at = dict(zip(kept, readings, strict=True))
    in_order = (  # readings and ticks in offset order: both move log time, refused records do not
        (messages[i].partition(), ticks[i] if i in ticks else reading_at[i].ts_ms, i in ticks)
        for i in range(len(messages))
        if i in ticks or i in reading_at
    )
    before = clock.advance(in_order)
    arrived = [r.ts_ms if b is None else b for r, b in zip(readings, before, strict=True)]

    items_by_shard: dict[int, list[ShardItem]] = defaultdict(list)
    ids_by_shard: dict[int, set[str]] = defaultdict(set)
    for reading, partition, offset, rid, at in zip(readings, partitions, offsets, request_of, arrived, strict=True):
        shard = shard_of(reading.driver_id, shards)
        items_by_shard[shard].append(ShardItem(reading=reading, partition=partition, offset=offset, arrived_ms=at))
        if rid is not None:
            ids_by_shard[shard].add(rid)
    next_offsets: dict[tuple[str, int], int] = {}
    for m in messages:
        key = (m.topic(), m.partition())
        next_offsets[key] = max(next_offsets.get(key, 0), m.offset() + 1)
    request_ids = tuple(sorted({rid for rid in request_of_message if rid is not None}))
    persist = PersistBatch(
        consumer_group=consumer_group,
        readings=ReadingColumns.from_readings(readings, partitions, offsets, arrived),
        offsets=tuple(
            PartitionOffset(topic, p, o, clock.times.get(p)) for (topic, p), o in sorted(next_offsets.items())
        ),
        request_ids=request_ids,
        **({"request_id_index": _index_of(request_of, request_ids)} if ids_by_shard else {}),
    )
    return PreparedBatch(
        persist=persist,
        shard_blobs={s: encode_shard_items(items_by_shard.get(s, ())) for s in range(shards)},
        log_times=clock.of(p for _, p in next_offsets),
        dead_letters=[_dead_letter(messages[i], r) for i, r in sorted(rejected.items())],
        shard_request_ids={s: tuple(sorted(ids)) for s, ids in sorted(ids_by_shard.items())},
    )


def log_tick_of(message: Message) -> int | None:
    """The log time a tick record carries (domain.log_time), None for any other record."""
    for name, _value in message.headers() or ():
        if name == LOG_TICK_HEADER:
            return decode_tick(message.value() or b"")
    return None


def request_id(message: Message) -> str | None:
    """The message's `x-request-id` header (set by the API's ingest route), None when it has none."""
    for name, value in message.headers() or ():
        if name == REQUEST_ID_HEADER and value:
            return value.decode(errors="replace")
    return None


def _index_of(request_of: Sequence[str | None], request_ids: tuple[str, ...]) -> np.ndarray:
    index = {rid: i for i, rid in enumerate(request_ids)}
    return np.fromiter((-1 if rid is None else index[rid] for rid in request_of), np.int32, len(request_of))


def _dead_letter(message: Message, rejection: Rejection) -> DeadLetter:
    headers = [
        (dl.REASON, rejection.reason.value.encode()),
        (dl.MESSAGE, rejection.message.encode()[:1000]),
        (dl.SOURCE_TOPIC, message.topic().encode()),
        (dl.SOURCE_PARTITION, str(message.partition()).encode()),
        (dl.SOURCE_OFFSET, str(message.offset()).encode()),
    ]
    if rejection.field:
        headers.append((dl.FIELD, rejection.field.encode()))
    headers.extend(dl.carried_headers(message.headers() or ()))  # the request id, and a replay's origin
    return DeadLetter(value=message.value() or b"", key=message.key(), headers=headers)
