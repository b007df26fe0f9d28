"""Dead letters as the pipeline writes them, and which of them to replay (issue 14 item 6). Pure.

The consumer dead-letters a refused record with its original value and key and these headers
(actors/ingest_batch.py): `reason` (a `RejectReason` value), `message`, `field` (when one field is the
culprit), `source_topic`, `source_partition`, `source_offset`, and the reading's `x-request-id`. A record
replayed from the DLQ carries `x-dlq-replay-of: <dlq topic>:<partition>:<offset>`, and keeps it if it is
dead-lettered again, so a still-invalid replay can be traced back.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

REASON = "reason"
MESSAGE = "message"
FIELD = "field"
SOURCE_TOPIC = "source_topic"
SOURCE_PARTITION = "source_partition"
SOURCE_OFFSET = "source_offset"
REQUEST_ID = "x-request-id"
REPLAY_OF = "x-dlq-replay-of"
# Copied from a record to its dead letter (and the request id from a dead letter to its replay).
CARRIED_HEADERS = (REQUEST_ID, REPLAY_OF)

Position = tuple[int, int]  # (partition, offset) in the DLQ topic


@dataclass(frozen=True, slots=True)
class DeadLetterRecord:
    """One record of the DLQ topic as read back; `timestamp_ms` is Kafka's (when it was dead-lettered)."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int | None
    key: bytes | None
    value: bytes
    headers: tuple[tuple[str, bytes], ...]

    @property
    def position(self) -> Position:
        return (self.partition, self.offset)

    def header(self, name: str) -> str | None:
        """The last value of a header, as text (undecodable bytes replaced), None when absent."""
        found = None
        for key, value in self.headers:
            if key == name:
                found = value
        return None if found is None else found.decode(errors="replace")

    @property
    def reason(self) -> str:
        return self.header(REASON) or "unknown"

    @property
    def source(self) -> str | None:
        topic, partition, offset = (self.header(h) for h in (SOURCE_TOPIC, SOURCE_PARTITION, SOURCE_OFFSET))
        return None if topic is None else f"{topic}:{partition}:{offset}"


def replay_headers(record: DeadLetterRecord) -> list[tuple[str, bytes]]:
    """Headers of the replayed record: the request id it came with, and where in the DLQ it was replayed from."""
    kept = [(k, v) for k, v in record.headers if k == REQUEST_ID]
    return [*kept, (REPLAY_OF, f"{record.topic}:{record.partition}:{record.offset}".encode())]


def carried_headers(headers: Iterable[tuple[str, bytes | None]]) -> list[tuple[str, bytes]]:
    """The headers a record's dead letter keeps from the record itself (request id, replay origin)."""
    return [(k, v) for k, v in headers if k in CARRIED_HEADERS and v]


# -- choosing what to replay ------------------------------------------------------------------------------

_SPEC = re.compile(r"(?:(\d+):)?(\d+)(?:-(\d+))?")


class SelectionError(ValueError):
    """A replay selection that cannot be honoured; the message says what to type instead."""


def parse_positions(specs: Sequence[str], partitions: int) -> set[Position]:
    """`P:O`, `P:A-B` (inclusive) or, when the DLQ topic has one partition, `O` / `A-B`."""
    positions: set[Position] = set()
    for spec in specs:
        match = _SPEC.fullmatch(spec.strip())
        if match is None:
            raise SelectionError(f"{spec!r} is not an offset like 0:42 or a range like 0:40-49")
        if match[1] is None and partitions != 1:
            raise SelectionError(f"{spec!r} names no partition, and the DLQ has {partitions}: write it as P:{spec}")
        partition = int(match[1] or 0)
        first, last = int(match[2]), int(match[3] or match[2])
        if last < first:
            raise SelectionError(f"{spec!r}: the range ends before it starts")
        if partition >= partitions:
            raise SelectionError(f"{spec!r}: the DLQ has partitions 0..{partitions - 1}")
        positions.update((partition, o) for o in range(first, last + 1))
    return positions


def select(
    records: Iterable[DeadLetterRecord], *, positions: set[Position] | None = None,
    reasons: set[str] | None = None,
) -> list[DeadLetterRecord]:
    """Records at any of `positions` or with any of `reasons` (both None: every record), in DLQ order."""
    chosen = [
        r for r in records
        if (positions is None and reasons is None)
        or (positions is not None and r.position in positions)
        or (reasons is not None and r.reason in reasons)
    ]
    return sorted(chosen, key=lambda r: r.position)


def missing_positions(records: Iterable[DeadLetterRecord], positions: set[Position]) -> list[Position]:
    """Asked-for positions that hold no record (beyond the end, or never written)."""
    present = {r.position for r in records}
    return sorted(positions - present)
