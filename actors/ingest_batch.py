"""Turning one polled Kafka batch into what the shards and the persistence actor need.

Runs on the consumer's Kafka thread (CPU work off the actor's event loop). Decoding and validation
are the domain's (`decode_batch`); here we only attach Kafka positions, route by driver, build the
columns for COPY and the dead letters for what the domain rejected.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from confluent_kafka import Message

from domain.batches import (
    PartitionOffset,
    PersistBatch,
    ReadingColumns,
    ShardItem,
    encode_shard_items,
)
from domain.rules import ValidationRules
from domain.shard_core import shard_of
from domain.validation import Rejection, decode_batch

REQUEST_ID_HEADER = "x-request-id"


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """The original bytes and why they were refused, with where they came from."""

    value: bytes
    key: bytes | None
    headers: list[tuple[str, bytes]]


@dataclass(frozen=True, slots=True)
class PreparedBatch:
    persist: PersistBatch
    shard_blobs: dict[int, bytes]
    drivers: frozenset[str]
    dead_letters: list[DeadLetter]


def prepare_batch(
    messages: Sequence[Message], shards: int, consumer_group: str, rules: ValidationRules, now_s: float
) -> PreparedBatch:
    values = [m.value() or b"" for m in messages]
    readings, rejects = decode_batch(values, int(now_s * 1000), rules)
    rejected = {i: r for i, r in rejects}
    accepted = [m for i, m in enumerate(messages) if i not in rejected]
    partitions = [m.partition() for m in accepted]
    offsets = [m.offset() for m in accepted]

    items_by_shard: dict[int, list[ShardItem]] = defaultdict(list)
    for reading, partition, offset in zip(readings, partitions, offsets, strict=True):
        items_by_shard[shard_of(reading.driver_id, shards)].append(
            ShardItem(reading=reading, partition=partition, offset=offset)
        )
    next_offsets: dict[tuple[str, int], int] = {}
    request_ids: set[str] = set()
    for m in messages:
        key = (m.topic(), m.partition())
        next_offsets[key] = max(next_offsets.get(key, 0), m.offset() + 1)
        for name, value in m.headers() or ():
            if name == REQUEST_ID_HEADER and value:
                request_ids.add(value.decode(errors="replace"))
    persist = PersistBatch(
        consumer_group=consumer_group,
        readings=ReadingColumns.from_readings(readings, partitions, offsets),
        offsets=tuple(PartitionOffset(topic, p, o) for (topic, p), o in sorted(next_offsets.items())),
        request_ids=tuple(sorted(request_ids)),
    )
    return PreparedBatch(
        persist=persist,
        shard_blobs={s: encode_shard_items(items) for s, items in sorted(items_by_shard.items())},
        drivers=frozenset(r.driver_id for r in readings),
        dead_letters=[_dead_letter(messages[i], r) for i, r in sorted(rejected.items())],
    )


def _dead_letter(message: Message, rejection: Rejection) -> DeadLetter:
    headers = [
        ("reason", rejection.reason.value.encode()),
        ("message", rejection.message.encode()[:1000]),
        ("source_topic", message.topic().encode()),
        ("source_partition", str(message.partition()).encode()),
        ("source_offset", str(message.offset()).encode()),
    ]
    if rejection.field:
        headers.append(("field", rejection.field.encode()))
    for name, value in message.headers() or ():
        if name == REQUEST_ID_HEADER and value:
            headers.append((name, value))
    return DeadLetter(value=message.value() or b"", key=message.key(), headers=headers)
