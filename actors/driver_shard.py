"""DriverShard: owns the per-driver state of the drivers hashed to it (DESIGN.md §1).

A thin shell over `domain.shard_core`: activate missing drivers from storage in one batched read,
fold the batch, passivate idle drivers, return the `ShardOutput`. `max_concurrency=1` keeps calls in
submission order (async actors otherwise interleave them). After a crash Ray reruns `__init__`
only: the shard starts empty and reactivates drivers from snapshot + stored readings on demand.
"""

from __future__ import annotations

import time

import ray

from actors.common import ActorContext
from domain.batches import ShardItem, ShardOutput, decode_shard_items
from domain.shard_core import DriverSlot, activate, fold_batch, group_by_driver, idle_drivers
from storage.postgres.event_store import PostgresEventStore


@ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=0, max_concurrency=1)
class DriverShard:
    def __init__(self, index: int, settings) -> None:
        self.index = index
        self.ctx = ActorContext(settings, f"shard-{index}")
        self.slots: dict[str, DriverSlot] = {}
        self.batch_no = 0
        self.activations = 0
        self.passivations = 0
        self._store: PostgresEventStore | None = None
        # timing counters (seconds) for `autoins bench ingest`
        self.decode_s = 0.0
        self.activation_s = 0.0
        self.fold_s = 0.0

    async def _event_store(self) -> PostgresEventStore:
        if self._store is None:
            pool = await self.ctx.pool(max_size=2)
            self._store = PostgresEventStore(pool)
        return self._store

    async def process(self, items_blob: bytes) -> ShardOutput:
        """Fold one batch's readings for this shard's drivers (msgpack list of ShardItem, offset order)."""
        self.batch_no += 1
        started = time.perf_counter()
        items: list[ShardItem] = decode_shard_items(items_blob)
        by_driver = group_by_driver(items)
        missing = [d for d in by_driver if d not in self.slots]
        decoded = time.perf_counter()
        self.decode_s += decoded - started
        if missing:
            store = await self._event_store()
            stored = await self.ctx.retry(lambda: store.load_drivers(missing), what="load drivers")
            for driver_id in missing:
                found = stored.get(driver_id)
                self.slots[driver_id] = activate(
                    driver_id,
                    found.timezone if found else "UTC",
                    found.snapshot if found else None,
                    found.readings if found else (),
                    self.ctx.trip_rules,
                )
            self.activations += len(missing)
        activated = time.perf_counter()
        self.activation_s += activated - decoded
        output = fold_batch(
            self.slots,
            by_driver,
            self.ctx.trip_rules,
            self.ctx.settings.snapshot_every_events,
            self.index,
            self.batch_no,
        )
        for driver_id in idle_drivers(self.slots, self.batch_no, self.ctx.settings.shard_idle_batches):
            del self.slots[driver_id]
            self.passivations += 1
        self.fold_s += time.perf_counter() - activated
        return output

    async def evict(self, driver_ids: list[str] | None = None) -> int:
        """Forget drivers whose in-memory state may be ahead of what is durable (a failed batch);
        None forgets everyone. They reactivate from storage on their next reading."""
        if driver_ids is None:
            count = len(self.slots)
            self.slots.clear()
            return count
        return sum(self.slots.pop(d, None) is not None for d in driver_ids)

    async def evict_partitions(self, partitions: list[int]) -> int:
        """Forget the drivers last fed from these Kafka partitions (their consumer restarted)."""
        gone = [d for d, slot in self.slots.items() if slot.source_partition in set(partitions)]
        for driver_id in gone:
            del self.slots[driver_id]
        return len(gone)

    async def stats(self) -> dict:
        return {
            "shard": self.index,
            "active_drivers": len(self.slots),
            "batches": self.batch_no,
            "activations": self.activations,
            "passivations": self.passivations,
            "decode_s": round(self.decode_s, 3),
            "activation_s": round(self.activation_s, 3),
            "fold_s": round(self.fold_s, 3),
            "pid": self.ctx.pid,
        }

    async def shutdown(self) -> None:
        await self.ctx.close()
