"""Persistence: the Ray shell of `usecases.ingest.PersistBatchHandler` (docs/PIPELINE.md).

The handler writes the batch in one PostgreSQL transaction (readings, domain events with the stream
compare-and-set and their request ids, due snapshots, ended trips, the consumer offsets), then the Redis
projections, then hands the ended trips to the risk scorer. While PostgreSQL or Redis is away the call waits
and retries (`ActorContext.retry`); the consumer waits on it, so an outage becomes Kafka lag, not loss. A
`ConcurrencyConflict` is not retried: it means another writer owns the stream, and the consumer rewinds.
`max_concurrency=1` runs one batch at a time; the order is the consumer's: each write takes the previous write's
ObjectRef as an argument (Ray starts an async actor's calls as their arguments resolve, not in submission order).
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import ray

from actors.common import ActorContext
from domain.batches import PersistBatch, ShardOutput
from domain.scoring import EndedTrip
from storage.postgres.event_store import PostgresEventStore
from storage.postgres.partitions import PartitionCache
from storage.redis.projections import RedisProjector
from usecases.ingest import PersistBatchHandler


class RayScorerSink:
    """The ScorerSink port over the RiskScorer actor, found by name: one call that is not awaited (scoring never
    slows ingest). The handle is looked up again every `lookup_every_s`, so an actor the supervisor re-created is
    found; trips handed to a dead one are not lost, the scorer's catch-up finds every unscored trip."""

    def __init__(self, scorer_name: str, lookup_every_s: float = 5.0) -> None:
        self.scorer_name = scorer_name
        self.lookup_every_s = lookup_every_s
        self._handle = None
        self._looked_up_at = float("-inf")

    def submit(self, trips: Sequence[EndedTrip]) -> None:
        now = time.monotonic()
        if self._handle is None or now - self._looked_up_at >= self.lookup_every_s:
            self._handle = ray.get_actor(self.scorer_name)  # ValueError while it is being re-created
            self._looked_up_at = now
        self._handle.submit.remote(list(trips))


@ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=0, max_concurrency=1)
class Persistence:
    def __init__(self, index: int, settings, scorer_name: str | None = None) -> None:
        self.index = index
        self.scorer_name = scorer_name  # the RiskScorer actor's name, or None (no scoring on trip end)
        self.ctx = ActorContext(settings, f"persistence-{index}")
        self._handler: PersistBatchHandler | None = None
        self.batches = 0
        self.readings = 0
        self.events = 0
        self.trips_handed = 0
        self.write_s = 0.0
        self.project_s = 0.0

    async def _persist(self) -> PersistBatchHandler:
        if self._handler is None:
            store = PostgresEventStore(await self.ctx.pool(max_size=2), PartitionCache())
            sink = None if self.scorer_name is None else RayScorerSink(self.scorer_name)
            self._handler = PersistBatchHandler(
                store, RedisProjector(self.ctx.redis()), sink, retry=self.ctx.retry, log=self.ctx.log
            )
        return self._handler

    async def write(self, batch: PersistBatch, after: dict | None, *outputs: ShardOutput) -> dict:
        """Make `batch` (with the shards' outputs, resolved by Ray from their ObjectRefs) durable and
        visible. `after` is the previous batch's answer (unused): passed as its ObjectRef, it orders the
        writes. Returns timing and counts; raises ConcurrencyConflict when the stream moved."""
        batch = PersistBatch(
            consumer_group=batch.consumer_group,
            readings=batch.readings,
            offsets=batch.offsets,
            outputs=tuple(outputs),
            request_ids=batch.request_ids,
            request_id_index=batch.request_id_index,
        )
        done = await (await self._persist()).handle(batch)
        self.batches += 1
        self.readings += len(batch.readings)
        self.events += done.result.events_inserted
        self.trips_handed += done.trips_handed
        self.write_s += done.write_s
        self.project_s += done.project_s
        return {
            "readings_inserted": done.result.readings_inserted,
            "readings_duplicate": done.result.readings_duplicate,
            "events_inserted": done.result.events_inserted,
            "trips_inserted": done.result.trips_inserted,
            "write_ms": done.write_s * 1000,
            "project_ms": done.project_s * 1000,
        }

    async def stats(self) -> dict:
        return {
            "persistence": self.index,
            "batches": self.batches,
            "readings": self.readings,
            "events": self.events,
            "write_s": round(self.write_s, 3),
            "project_s": round(self.project_s, 3),
            "trips_to_scorer": self.trips_handed,
            "pid": self.ctx.pid,
            "node": self.ctx.node_id,
        }

    async def shutdown(self) -> None:
        await self.ctx.close()
