"""The raw limit: what ONE plain process (no Ray, no domain logic) does with the same topic and rows.

It consumes the benchmark's topic under its own consumer group (static `assign`, from the beginning,
through the pipeline's own `KafkaSource`), decodes and validates every batch exactly as the consumer
does (`domain.validation.decode_batch` → `ReadingColumns.from_readings`) and stores it with the same
idempotent, offset-tracking transaction (`PostgresEventStore.write_batch`: binary COPY of the readings +
monotonic offset upsert; no events, snapshots, trips or Redis) into its own scratch database.

Overlap as PERF_NOTES.md §3 measured it: poll + decode of batch k+1 run on the Kafka thread while
the transactions of batches k and k-1 run on two connections (at most two in flight). The gap between
the pipeline and this figure is what Ray, the shards' domain logic and the projections cost.
"""

from __future__ import annotations

import asyncio
import gc
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass

from confluent_kafka import Message

from actors.kafka_source import KafkaSource
from autoins.bench.queries import server_progress
from autoins.bench.sampling import CpuMeter, RssPeaks, Timeline
from autoins.errors import UserFacingError
from config.logging import get_logger
from config.rules import validation_rules
from config.settings import Settings
from domain.batches import PartitionOffset, PersistBatch, ReadingColumns
from domain.rules import ValidationRules
from domain.validation import decode_batch
from storage.postgres.event_store import PostgresEventStore
from storage.postgres.partitions import PartitionCache
from storage.postgres.pool import create_pool

CONCURRENT_TRANSACTIONS = 2


@dataclass(frozen=True, slots=True)
class RawBatch:
    persist: PersistBatch
    rejected: int
    decode_s: float  # decode_batch: msgspec + validation → Reading structs
    columns_s: float  # ReadingColumns.from_readings + offsets


def prepare_raw(messages: Sequence[Message], consumer_group: str, rules: ValidationRules, now_s: float) -> RawBatch:
    """The consumer's decode path without the shard routing (runs on the Kafka thread)."""
    started = time.perf_counter()
    readings, rejects = decode_batch([m.value() or b"" for m in messages], int(now_s * 1000), rules)
    decoded = time.perf_counter()
    rejected = {i for i, _ in rejects}
    accepted = [m for i, m in enumerate(messages) if i not in rejected] if rejected else messages
    next_offsets: dict[tuple[str, int], int] = {}
    for m in messages:
        key = (m.topic(), m.partition())
        next_offsets[key] = max(next_offsets.get(key, 0), m.offset() + 1)
    persist = PersistBatch(
        consumer_group=consumer_group,
        readings=ReadingColumns.from_readings(
            readings, [m.partition() for m in accepted], [m.offset() for m in accepted]
        ),
        offsets=tuple(PartitionOffset(t, p, o) for (t, p), o in sorted(next_offsets.items())),
    )
    return RawBatch(persist, len(rejects), decoded - started, time.perf_counter() - decoded)


@dataclass
class RawRun:
    events_per_s: float
    elapsed_s: float
    durable: int
    rejected: int
    p50_ms: float | None
    p95_ms: float | None
    rss_peak_mb: float
    stages_s: dict[str, float]
    cpu_s: dict[str, float]
    server: dict
    timeline: Timeline


async def run_raw_limit(settings: Settings, events: int, *, batch_size: int, timeout_s: float,
                        service_pids: dict[str, int], interval_s: float = 0.25) -> RawRun:
    # Like for like: the pipeline's actors run with this GC threshold (actors/common.py), so the raw
    # limit does too; otherwise the ratio would measure the GC setting, not the pipeline.
    previous_gc = gc.get_threshold()
    gc.set_threshold(50_000, 20, 20)
    try:
        return await _run_raw_limit(settings, events, batch_size=batch_size, timeout_s=timeout_s,
                                    service_pids=service_pids, interval_s=interval_s)
    finally:
        gc.set_threshold(*previous_gc)


async def _run_raw_limit(settings: Settings, events: int, *, batch_size: int, timeout_s: float,
                         service_pids: dict[str, int], interval_s: float) -> RawRun:
    source = KafkaSource(settings, 0, 1, get_logger("bench-raw"))
    pool = await create_pool(settings, application_name="autoins-bench-raw", min_size=CONCURRENT_TRANSACTIONS,
                             max_size=CONCURRENT_TRANSACTIONS)
    store = PostgresEventStore(pool, PartitionCache())
    rules = validation_rules(settings)
    linger_s = settings.consumer_linger_ms / 1000
    stages = dict.fromkeys(("poll_s", "decode_s", "columns_s", "slot_wait_s", "write_s"), 0.0)
    acked: list[float] = []  # wall-clock acknowledgement times
    latencies_ms: list[float] = []
    durable_at: list[tuple[float, int]] = []
    rss = RssPeaks({"raw": os.getpid()})
    slots = asyncio.Semaphore(CONCURRENT_TRANSACTIONS)
    writes: set[asyncio.Task] = set()
    durable = 0

    async def write(batch: RawBatch, polled_at: float) -> None:
        nonlocal durable
        try:
            started = time.perf_counter()
            await store.write_batch(batch.persist)
            stages["write_s"] += time.perf_counter() - started
            durable += len(batch.persist.readings)
            acked.append(time.time())
            latencies_ms.append((time.perf_counter() - polled_at) * 1000)
        finally:
            slots.release()

    cpu = CpuMeter()

    async def sample() -> None:
        while True:
            durable_at.append((time.time(), durable))
            rss.sample()
            if len(durable_at) % 4 == 0:
                cpu.sample()
            await asyncio.sleep(interval_s)

    sampler = asyncio.create_task(sample())
    try:
        await source.call(source.open)
        await source.call(source.assign, {})  # every partition from the beginning
        async with pool.acquire() as conn:
            before = await server_progress(conn)
        deadline = time.monotonic() + timeout_s
        polled, rejected, first_poll_at = 0, 0, None
        while polled < events:
            if time.monotonic() > deadline:
                raise UserFacingError(f"the raw limit stored {durable:,}/{events:,} readings in {timeout_s:,.0f} s")
            poll_started, poll_started_at = time.perf_counter(), time.time()
            messages = await source.call(source.poll, batch_size, linger_s)
            stages["poll_s"] += time.perf_counter() - poll_started
            if not messages:
                continue
            if first_poll_at is None:
                first_poll_at = poll_started_at
                cpu.start()
            polled_at = time.perf_counter()
            batch = await source.call(prepare_raw, messages, settings.kafka_consumer_group, rules, time.time())
            stages["decode_s"] += batch.decode_s
            stages["columns_s"] += batch.columns_s
            polled += len(messages)
            rejected += batch.rejected
            waited = time.perf_counter()
            await slots.acquire()
            stages["slot_wait_s"] += time.perf_counter() - waited
            for done in [t for t in writes if t.done()]:
                writes.discard(done)
                done.result()  # a failed transaction stops the run
            task = asyncio.create_task(write(batch, polled_at))
            writes.add(task)
        await asyncio.gather(*writes)
        cpu_s = cpu.finish({pid: role for role, pid in service_pids.items()}, None)
        async with pool.acquire() as conn:
            server = (await server_progress(conn)).since(before)
    finally:
        sampler.cancel()
        for task in writes:
            task.cancel()
        await asyncio.gather(sampler, *writes, return_exceptions=True)
        await source.call(source.close)
        source.thread.shutdown(wait=False)
        await pool.close()

    elapsed_s = max(max(acked) - first_poll_at, 1e-9)
    timeline = Timeline()
    timeline.add(0.0, 0)
    for at, count in [*durable_at, (time.time(), durable)]:
        if at > first_poll_at:
            timeline.add(at - first_poll_at, count)
    latencies = sorted(latencies_ms)
    return RawRun(
        events_per_s=durable / elapsed_s,
        elapsed_s=elapsed_s,
        durable=durable,
        rejected=rejected,
        p50_ms=_quantile(latencies, 0.5),
        p95_ms=_quantile(latencies, 0.95),
        rss_peak_mb=round(rss.peak_sum / 2**20, 1),
        stages_s={k: round(v, 2) for k, v in stages.items()},
        cpu_s=cpu_s,
        server=server,
        timeline=timeline,
    )


def _quantile(values: list[float], q: float) -> float | None:
    return round(values[min(len(values) - 1, int(q * len(values)))], 1) if values else None
