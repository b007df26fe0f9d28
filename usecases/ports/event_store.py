"""EventStore: where the ingest use cases make a batch durable and find a driver's past (DESIGN.md §2, §4).

Adapters: `storage.postgres.event_store.PostgresEventStore` and the fake `storage.memory.event_store.
InMemoryEventStore`; both pass tests/contracts/event_store_contract.py. What crosses the port (results,
activation data, the conflict error) is defined once in `storage.event_store_contract`, re-exported here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from domain.batches import PersistBatch
from storage.event_store_contract import (
    DEFAULT_REPLAY_MARGIN_MS,
    ConcurrencyConflict,
    StoredDriver,
    WriteResult,
)

__all__ = ["ConcurrencyConflict", "EventStore", "StoredDriver", "WriteResult"]


class EventStore(Protocol):
    async def write_batch(self, batch: PersistBatch) -> WriteResult:
        """The batch durable whole or not at all; a retry of a stored batch is a no-op that succeeds.
        Raises ConcurrencyConflict (nothing stored) when a stream moved under the writer."""
        ...

    async def load_drivers(
        self, driver_ids: Sequence[str], replay_margin_ms: int = DEFAULT_REPLAY_MARGIN_MS
    ) -> dict[str, StoredDriver]:
        """Activation data (snapshot, readings after it, stream head, timezone) of every id, in one read."""
        ...

    async def open_drivers(self) -> list[str]:
        """Every driver whose newest snapshot is open (a trip, buffer or crash in progress), sorted: a shard
        that starts or forgets drivers reloads its share of them, so log time can still close their trips."""
        ...

    async def stored_offsets(self, consumer_group: str, topic: str) -> dict[int, int]:
        """partition -> next offset to consume (the first offset not yet stored)."""
        ...

    async def stored_log_times(self, consumer_group: str, topic: str) -> dict[int, int]:
        """partition -> its log time at the stored offset (domain.log_time), for the partitions that have one."""
        ...
