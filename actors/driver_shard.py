"""DriverShard: the Ray shell of `usecases.ingest.ShardBatchHandler` (DESIGN.md §1).

The handler owns the per-driver state of the drivers hashed to this shard: it activates missing drivers
from the event store in one batched read, folds the batch, passivates idle drivers. Here: decode the
msgpack blob, call it, keep the stats. `max_concurrency=1` keeps calls in submission order (async actors
otherwise interleave them). After a crash Ray reruns `__init__` only: the shard starts empty and
reactivates drivers from snapshot + stored readings on demand.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import ray

from actors.common import ActorContext
from domain.batches import PersistBatch, ShardOutput, decode_shard_items
from storage.postgres.event_store import DEFAULT_REPLAY_MARGIN_MS, PostgresEventStore, StoredDriver, WriteResult
from usecases.ingest import ShardBatchHandler


class _LazyPostgresEventStore:
    """Builds the pool on the first activation read (constructors stay cheap: STYLE.md habit 8)."""

    def __init__(self, ctx: ActorContext) -> None:
        self._ctx = ctx
        self._store: PostgresEventStore | None = None

    async def _get(self) -> PostgresEventStore:
        if self._store is None:
            self._store = PostgresEventStore(await self._ctx.pool(max_size=2))
        return self._store

    async def load_drivers(
        self, driver_ids: Sequence[str], replay_margin_ms: int = DEFAULT_REPLAY_MARGIN_MS
    ) -> dict[str, StoredDriver]:
        return await (await self._get()).load_drivers(driver_ids, replay_margin_ms)

    async def write_batch(self, batch: PersistBatch) -> WriteResult:
        return await (await self._get()).write_batch(batch)

    async def open_drivers(self) -> list[str]:
        return await (await self._get()).open_drivers()


@ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=0, max_concurrency=1)
class DriverShard:
    def __init__(self, index: int, settings) -> None:
        self.index = index
        self.ctx = ActorContext(settings, f"shard-{index}")
        self.handler = ShardBatchHandler(
            _LazyPostgresEventStore(self.ctx),
            self.ctx.trip_rules,
            shard=index,
            shards=settings.num_shards,
            snapshot_every_events=settings.snapshot_every_events,
            idle_batches=settings.shard_idle_batches,
            retry=self.ctx.retry,
            log=self.ctx.log,
        )
        self.activations = 0
        self.passivations = 0
        # timing counters (seconds) for `autoins bench ingest`
        self.decode_s = 0.0
        self.activation_s = 0.0
        self.fold_s = 0.0

    async def process(
        self, items_blob: bytes, log_times: dict[int, int] | None = None, request_ids: tuple[str, ...] = ()
    ) -> ShardOutput:
        """Fold one batch's readings for this shard's drivers (msgpack list of ShardItem, offset order; may be
        empty: every shard hears every batch's `log_times`, partition -> log time after it); `request_ids`: the
        API requests those readings came from (bound to the batch's log lines)."""
        started = time.perf_counter()
        items = decode_shard_items(items_blob)
        self.decode_s += time.perf_counter() - started
        done = await self.handler.handle(items, request_ids, log_times)
        self.decode_s += done.group_s
        self.activations += done.activated
        self.passivations += done.passivated
        self.activation_s += done.activation_s
        self.fold_s += done.fold_s
        return done.output

    async def evict(self, driver_ids: list[str] | None = None) -> int:
        """Forget drivers whose in-memory state may be ahead of what is durable (a failed batch);
        None forgets everyone. They reactivate from storage on their next reading."""
        return self.handler.evict(driver_ids)

    async def evict_partitions(self, partitions: list[int]) -> int:
        """Forget the drivers last fed from these Kafka partitions (their consumer restarted)."""
        return self.handler.evict_partitions(partitions)

    async def stats(self) -> dict:
        return {
            "shard": self.index,
            "active_drivers": len(self.handler.slots),
            "batches": self.handler.batch_no,
            "activations": self.activations,
            "passivations": self.passivations,
            "decode_s": round(self.decode_s, 3),
            "activation_s": round(self.activation_s, 3),
            "fold_s": round(self.fold_s, 3),
            "pid": self.ctx.pid,
            "node": self.ctx.node_id,
        }

    async def shutdown(self) -> None:
        await self.ctx.close()
