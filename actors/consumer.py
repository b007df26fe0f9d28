"""IngestConsumer: Kafka → validate → shards → persistence → commit, with bounded batches in flight.

Each of the C consumers owns the partitions p with p % C == index (static assignment under one group
id): Ray restarts a dead consumer and it resumes from the offsets stored in PostgreSQL, so there is no
group rebalance to wait for (KAFKA_NOTES.md: joins are slow here, and one member leaving stalls the
others). Offsets are committed to Kafka too, after the batch is durable, for lag monitoring.

A batch that fails anywhere (a shard or the persistence actor died, a stream conflict) makes the
consumer rewind: wait for what is in flight, evict the drivers of its partitions from the shards (their
state may be ahead of what is durable, log time included), seek back to the stored offsets, and go on.
Every write is idempotent, so whatever happened to the failed call, replaying it is safe.

Kafka's client is not thread-safe: every call on it runs in one dedicated thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from dataclasses import dataclass, field

import ray

from actors.common import ActorContext
from actors.consumer_metrics import ConsumerMetrics
from actors.ingest_batch import PreparedBatch, prepare_batch
from actors.kafka_source import KafkaSource
from config.rules import batch_sizing_rules
from domain.batch_sizing import BatchTarget, PollObservation, caught_up_target, next_target
from domain.log_time import IdleTicker, LogClock
from storage.postgres.event_store import PostgresEventStore
from storage.postgres.privacy import PostgresPrivacyStore
from usecases.stripped_drivers import StrippedDrivers


@dataclass
class InFlight:
    ref: ray.ObjectRef
    prepared: PreparedBatch
    polled_at: float


@dataclass
class ConsumerTotals:
    polled: int = 0
    valid: int = 0
    dead_lettered: int = 0
    batches: int = 0
    durable: int = 0
    rewinds: int = 0
    log_ticks: int = 0  # log tick records written into idle partitions
    last_error: str | None = None
    latencies_ms: deque = field(default_factory=lambda: deque(maxlen=10_000))
    # timing counters (seconds; `*_at` are wall-clock epoch seconds) for `autoins bench ingest`
    poll_s: float = 0.0
    prepare_s: float = 0.0
    dlq_s: float = 0.0
    ack_wait_s: float = 0.0
    first_poll_at: float | None = None
    last_ack_at: float | None = None


@ray.remote(num_cpus=0, max_restarts=-1, max_concurrency=8)
class IngestConsumer:
    def __init__(self, index: int, count: int, settings, shards: list, persisters: list) -> None:
        self.index = index
        self.count = count
        self.ctx = ActorContext(settings, f"consumer-{index}")
        self.shards = shards
        self.persister = persisters[index % len(persisters)]
        self.topic = settings.kafka_topic_events
        self.group = settings.kafka_consumer_group
        self.kafka = KafkaSource(settings, index, count, self.ctx.log)
        self.partitions: list[int] = []
        self.next_offsets: dict[int, int] = {}
        self.clock = LogClock()  # the partitions' log times (domain.log_time), restored at every seek
        rules = self.ctx.trip_rules
        self.ticker = IdleTicker(settings.log_tick_idle_s,
                                 horizon_ms=int(rules.gap_s * 1000) + rules.reorder_window_ms + 60_000)
        self.inflight: deque[InFlight] = deque()
        self.totals = ConsumerTotals()
        self.running = False
        self.stopping = False
        self.consecutive_failures = 0
        self.metrics = ConsumerMetrics(self.topic, self.group, index)
        self.sizing = batch_sizing_rules(settings)
        self.target: BatchTarget = caught_up_target(self.sizing)
        self.backlog = 0
        self.stripped: StrippedDrivers | None = None  # built with the pool, on first use

    async def _stripped_drivers(self) -> frozenset[str]:
        """The mileage_only/erased drivers, as of at most PRIVACY_REFRESH_S ago (usecases.stripped_drivers)."""
        if self.stripped is None:
            store = PostgresPrivacyStore(await self.ctx.pool(max_size=1), self.ctx.settings)
            self.stripped = StrippedDrivers(store, self.ctx.settings.privacy_refresh_s,
                                            retry=lambda op, what: self.ctx.retry(op, what=what))
        return await self.stripped.current()

    # -- the loop ------------------------------------------------------------------------------------
    @ray.method(max_task_retries=-1)
    async def run(self) -> dict:
        """Consume until `stop()`. Declared with infinite task retries: when this actor's process dies,
        Ray restarts it and calls `run` again, which resumes from the stored offsets."""
        if self.running:
            return {"already_running": True}
        self.running = True
        settings = self.ctx.settings
        try:
            self.partitions = await self.kafka.call(self.kafka.open)
            await self._evict_my_partitions()
            await self._seek_to_stored_offsets()
            self.ctx.log.info("consumer_started", topic=self.topic, partitions=self.partitions)
            messages: list = []
            while not self.stopping:
                poll_started, poll_started_at = time.perf_counter(), time.time()
                target = await self._next_target(len(messages))
                messages = await self.kafka.call(self.kafka.poll, target.max_messages, target.linger_s,
                                                 target.first_wait_s)
                self.totals.poll_s += time.perf_counter() - poll_started
                if messages and self.totals.first_poll_at is None:
                    self.totals.first_poll_at = poll_started_at
                if messages:
                    await self._submit(messages)
                else:
                    if not self.inflight:
                        await self._tick_idle_partitions()
                while self.inflight and (len(self.inflight) >= settings.consumer_max_inflight_batches or not messages):
                    await self._complete_oldest()
            while self.inflight:
                await self._complete_oldest()
        except Exception as error:
            self.totals.last_error = repr(error)[:300]
            self.ctx.log.exception("consumer_failed")
            raise
        finally:
            await self.kafka.call(self.kafka.close)
            self.running = False
        return self._summary()

    async def _next_target(self, last_polled: int) -> BatchTarget:
        """Size the next poll by what waits in Kafka now (domain.batch_sizing decides)."""
        self.backlog = await self.kafka.call(self.kafka.backlog)
        self.target = next_target(self.target, PollObservation(self.backlog, last_polled, len(self.inflight)),
                                  self.sizing)
        self.metrics.batch_target(self.target.max_messages)
        return self.target

    async def _tick_idle_partitions(self) -> None:
        """Write a log tick into each partition idle long enough (domain.log_time.IdleTicker); it comes back
        through the poll like any record, so its effect is in the log."""
        ticks = self.ticker.due(self.clock, self.partitions, time.monotonic())
        if ticks:
            await self.kafka.call(self.kafka.send_log_ticks, ticks)
            self.totals.log_ticks += len(ticks)

    async def _submit(self, messages: list) -> None:
        polled_at = time.perf_counter()
        now = time.monotonic()
        for partition in {m.partition() for m in messages}:
            self.ticker.seen(partition, now)
        stripped = await self._stripped_drivers()
        prepared = await self.kafka.call(
            prepare_batch, messages, len(self.shards), self.group, self.ctx.validation_rules, time.time(), self.clock,
            stripped,
        )
        prepared_at = time.perf_counter()
        self.totals.prepare_s += prepared_at - polled_at
        if prepared.dead_letters:
            # The DLQ records must be in Kafka before offsets past them can be stored.
            await self.kafka.call(self.kafka.send_dead_letters, prepared.dead_letters)
            self.totals.dlq_s += time.perf_counter() - prepared_at
            self.metrics.dead_lettered(len(prepared.dead_letters))
        # a shard gets the request ids of its readings only when there are some (bench traffic has none)
        ids = prepared.shard_request_ids
        # every shard hears every batch (log time passes for its open drivers), most with no readings
        shard_refs = [
            self.shards[s].process.remote(blob, prepared.log_times, *((ids[s],) if s in ids else ()))
            for s, blob in prepared.shard_blobs.items()
        ]
        # Ray runs an async actor's calls as their arguments resolve, not in submission order: a small batch that
        # reached one fast shard could commit before the batch ahead of it (a stream version gap, a conflict). The
        # previous write's ref as an argument makes this write start only once that one is done.
        after = self.inflight[-1].ref if self.inflight else None
        ref = self.persister.write.remote(prepared.persist, after, *shard_refs)
        self.inflight.append(InFlight(ref=ref, prepared=prepared, polled_at=polled_at))
        self.totals.polled += len(messages)
        self.totals.valid += len(prepared.persist.readings)
        self.totals.dead_lettered += len(prepared.dead_letters)
        self.totals.batches += 1

    async def _complete_oldest(self) -> None:
        item = self.inflight.popleft()
        wait_started = time.perf_counter()
        try:
            written = await item.ref
        except Exception as error:
            self.totals.ack_wait_s += time.perf_counter() - wait_started
            await self._rewind(error, item)
            return
        self.totals.ack_wait_s += time.perf_counter() - wait_started
        self.consecutive_failures = 0
        offsets = {o.partition: o.next_offset for o in item.prepared.persist.offsets}
        self.next_offsets.update(offsets)
        await self.kafka.call(self.kafka.commit, offsets)
        self.totals.durable += len(item.prepared.persist.readings)
        self.totals.latencies_ms.append((time.perf_counter() - item.polled_at) * 1000)
        self.totals.last_ack_at = time.time()
        self.metrics.durable(len(item.prepared.persist.readings), time.perf_counter() - item.polled_at,
                             trips_ended=written.get("trips_inserted", 0))

    async def _rewind(self, error: BaseException, failed: InFlight) -> None:
        self.totals.rewinds += 1
        self.totals.last_error = repr(error)[:300]
        self.ctx.log.warning(
            "batch_failed_rewinding",
            error=repr(error)[:300],
            inflight=len(self.inflight),
            request_ids=list(failed.prepared.persist.request_ids),
        )
        pending = [failed, *self.inflight]
        self.inflight.clear()
        for item in pending[1:]:
            with contextlib.suppress(Exception):
                await item.ref
        # Forget every driver fed from this consumer's partitions, not only the failed batches' drivers: the log
        # time those batches carried may have closed a silent driver's trip in a shard (no reading of its own),
        # and a shard that kept it closed would never write that trip_ended (tests/unit/test_silence.py).
        await self._evict(None)
        await self._seek_to_stored_offsets()
        # Back off while the same failure repeats (a bug or a schema mismatch must not spin the CPU);
        # the first success resets it.
        self.consecutive_failures += 1
        await asyncio.sleep(min(30.0, 0.1 * 2 ** min(self.consecutive_failures, 9)))

    async def _evict(self, drivers: list[str] | None) -> None:
        for shard in self.shards:
            for attempt in range(600):  # a crashed shard takes a moment to come back
                try:
                    if drivers is None:
                        await shard.evict_partitions.remote(self.partitions)
                    else:
                        await shard.evict.remote(drivers)
                    break
                except (ray.exceptions.RayActorError, ray.exceptions.ActorUnavailableError):
                    await asyncio.sleep(min(1.0, 0.05 * (attempt + 1)))

    async def _evict_my_partitions(self) -> None:
        """After a (re)start the shards may hold state from batches this consumer never saw durable."""
        await self._evict(None)

    async def _seek_to_stored_offsets(self) -> None:
        pool = await self.ctx.pool(max_size=1)
        store = PostgresEventStore(pool)
        stored = await self.ctx.retry(lambda: store.stored_offsets(self.group, self.topic), what="read offsets")
        self.next_offsets = {p: stored.get(p, 0) for p in self.partitions}
        log_times = await self.ctx.retry(lambda: store.stored_log_times(self.group, self.topic), what="read log times")
        self.clock = LogClock({p: ms for p, ms in log_times.items() if p in self.partitions})
        await self.kafka.call(self.kafka.assign, stored)
        self.target = caught_up_target(self.sizing)  # the backlog after the seek resizes it on the next poll

    # -- control and observation -----------------------------------------------------------------------
    async def stop(self) -> None:
        self.stopping = True

    async def status(self) -> dict:
        lag = await self.kafka.call(self.kafka.lag, self.next_offsets) if self.running else {}
        return {**self._summary(), "lag": lag, "lag_total": sum(lag.values()), "running": self.running}

    def _summary(self) -> dict:
        t = self.totals
        latencies = sorted(t.latencies_ms)
        pick = (
            (lambda q: round(latencies[min(len(latencies) - 1, int(q * len(latencies)))], 1))
            if latencies
            else (lambda q: None)
        )
        return {
            "consumer": self.index,
            "partitions": self.partitions,
            "polled": t.polled,
            "valid": t.valid,
            "dead_lettered": t.dead_lettered,
            "batches": t.batches,
            "durable": t.durable,
            "rewinds": t.rewinds,
            "log_ticks": t.log_ticks,
            "log_times": dict(self.clock.times),
            "last_error": t.last_error,
            "batch_latency_p50_ms": pick(0.5),
            "batch_latency_p95_ms": pick(0.95),
            "poll_s": round(t.poll_s, 3),
            "prepare_s": round(t.prepare_s, 3),
            "dlq_s": round(t.dlq_s, 3),
            "ack_wait_s": round(t.ack_wait_s, 3),
            "batch_target": self.target.max_messages,
            "linger_ms": round(self.target.linger_s * 1000, 1),
            "backlog": self.backlog,
            "first_poll_at": t.first_poll_at,
            "last_ack_at": t.last_ack_at,
            "stripped_drivers": len(self.stripped.drivers) if self.stripped else 0,
            "privacy_loads": self.stripped.loads if self.stripped else 0,
            "pid": self.ctx.pid,
            "node": self.ctx.node_id,
        }
