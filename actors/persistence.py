"""Persistence: one PostgreSQL transaction per batch, then the Redis projections, then the ack.

The transaction (storage.postgres.event_store) holds the raw readings, the domain events with the stream
compare-and-set, due snapshots, ended trips and the consumer offsets: a batch is durable entirely or
not at all, and a retried batch is a no-op. While PostgreSQL or Redis is away the call waits and
retries (storage.retry); the consumer waits on it, so an outage becomes Kafka lag, not loss. A
`ConcurrencyConflict` is not retried: it means another writer owns the stream, and the consumer
rewinds. `max_concurrency=1` keeps one consumer's batches committing in order. Once a batch is durable and
projected, its ended trips go to the risk scorer in one call that is not awaited: scoring never slows ingest.
"""

from __future__ import annotations

import time

import ray

from actors.common import ActorContext
from domain.batches import PersistBatch, ShardOutput
from domain.scoring import ended_trips
from storage.postgres.event_store import PostgresEventStore
from storage.postgres.partitions import PartitionCache
from storage.redis.projections import publish_batch


@ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=0, max_concurrency=1)
class Persistence:
    def __init__(self, index: int, settings, scorer=None) -> None:
        self.index = index
        self.scorer = scorer  # actors.risk_scorer.RiskScorer handle, or None (no scoring on trip end)
        self.trips_handed = 0
        self.ctx = ActorContext(settings, f"persistence-{index}")
        self._store: PostgresEventStore | None = None
        self.batches = 0
        self.readings = 0
        self.events = 0
        self.write_s = 0.0
        self.project_s = 0.0

    async def _event_store(self) -> PostgresEventStore:
        if self._store is None:
            self._store = PostgresEventStore(await self.ctx.pool(max_size=2), PartitionCache())
        return self._store

    async def write(self, batch: PersistBatch, *outputs: ShardOutput) -> dict:
        """Make `batch` (with the shards' outputs, resolved by Ray from their ObjectRefs) durable and
        visible. Returns timing and counts; raises ConcurrencyConflict when the stream moved."""
        batch = PersistBatch(
            consumer_group=batch.consumer_group,
            readings=batch.readings,
            offsets=batch.offsets,
            outputs=tuple(outputs),
            request_ids=batch.request_ids,
        )
        store = await self._event_store()
        started = time.perf_counter()
        try:
            result = await self.ctx.retry(lambda: store.write_batch(batch), what="write batch to PostgreSQL")
        except Exception as error:
            self.ctx.log.warning("batch_not_written", error=repr(error)[:500], readings=len(batch.readings))
            raise
        written = time.perf_counter()
        redis = self.ctx.redis()
        await self.ctx.retry(lambda: publish_batch(redis, batch.outputs), what="publish projections to Redis")
        projected = time.perf_counter()
        self._hand_to_scorer(batch.outputs)
        self.batches += 1
        self.readings += len(batch.readings)
        self.events += result.events_inserted
        self.write_s += written - started
        self.project_s += projected - written
        return {
            "readings_inserted": result.readings_inserted,
            "readings_duplicate": result.readings_duplicate,
            "events_inserted": result.events_inserted,
            "trips_inserted": result.trips_inserted,
            "write_ms": (written - started) * 1000,
            "project_ms": (projected - written) * 1000,
        }

    def _hand_to_scorer(self, outputs: tuple[ShardOutput, ...]) -> None:
        """Fire and forget: a scorer that is down loses nothing (its catch-up finds unscored trips)."""
        if self.scorer is None:
            return
        trips = ended_trips(outputs)
        if trips:
            try:
                self.scorer.submit.remote(trips)
                self.trips_handed += len(trips)
            except Exception as error:
                self.ctx.log.warning("scorer_unreachable", error=repr(error)[:200], trips=len(trips))

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
        }

    async def shutdown(self) -> None:
        await self.ctx.close()
