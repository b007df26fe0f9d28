"""Ingest use cases: fold a shard's batch, persist a batch (docs/PIPELINE.md, "One batch").

Two handlers over ports, no Ray, no sockets: `ShardBatchHandler` owns one shard's driver slots (activate the
missing drivers in one batched read, fold, passivate the idle); `PersistBatchHandler` makes a batch durable
(EventStore), visible (Projector) and hands its ended trips to the scorer (ScorerSink). The actors in
`actors/` only decode their inputs, call these, and keep their stats. Every decision is the domain's
(`domain.shard_core`, `domain.scoring`).

Log lines written while a batch is handled carry its request ids (the `x-request-id` of the readings, bound
with structlog's contextvars), so one API request can be followed through the pipeline's logs.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any, TypeVar

from structlog.contextvars import bound_contextvars

from config.logging import get_logger
from domain.batches import PersistBatch, ShardItem, ShardOutput
from domain.rules import TripRules
from domain.scoring import ended_trips
from domain.shard_core import DriverSlot, activate, fold_batch, group_by_driver, idle_drivers, pass_log_times, shard_of
from usecases.ports.event_store import EventStore, WriteResult
from usecases.ports.projector import Projector
from usecases.ports.scorer_sink import ScorerSink

T = TypeVar("T")
Retry = Callable[..., Awaitable[Any]]
"""`await retry(operation, what=...)`: runs `operation()` until it succeeds or fails for good. The actors pass
`ActorContext.retry` (waits out PostgreSQL/Redis outages; ConcurrencyConflict is never retried)."""


async def run_once(operation: Callable[[], Awaitable[T]], *, what: str) -> T:
    """The Retry of tests and tools: one attempt."""
    return await operation()


# -- a shard's batch ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ShardBatchDone:
    """What one shard batch did: the output for persistence, and counts and timings (seconds) for stats."""

    output: ShardOutput
    activated: int
    passivated: int
    group_s: float  # grouping the items by driver
    activation_s: float  # the store's read and the replays
    fold_s: float  # the fold and the passivation


class ShardBatchHandler:
    """The driver slots of one shard and the batches that change them. Not safe for concurrent calls: the
    actor runs one call at a time (`max_concurrency=1`), which keeps a consumer's batches in order."""

    def __init__(
        self,
        store: EventStore,
        rules: TripRules,
        *,
        shard: int,
        shards: int = 1,
        snapshot_every_events: int,
        idle_batches: int,
        retry: Retry = run_once,
        log: Any = None,
    ) -> None:
        self.store = store
        self.log = log if log is not None else get_logger("ingest")
        self.rules = rules
        self.shard = shard
        self.snapshot_every_events = snapshot_every_events
        self.idle_batches = idle_batches
        self.retry = retry
        self.slots: dict[str, DriverSlot] = {}
        self.batch_no = 0
        self.shards = shards
        # After a start or an eviction, the open drivers (waiting for log time) that are not in memory are
        # loaded with the next batch, so a silent device's trip still closes (docs/DOMAIN.md §3).
        self.reload_open = True

    async def handle(
        self, items: Sequence[ShardItem], request_ids: Sequence[str] = (), log_times: dict[int, int] | None = None
    ) -> ShardBatchDone:
        """Fold one batch (items in Kafka offset order), then let the batch's partitions' log times pass for the
        open drivers (`log_times`: partition -> log time after the batch); raises what the store raises after
        its retries."""
        with _bound(request_ids):
            self.batch_no += 1
            started = time.perf_counter()
            by_driver = group_by_driver(items)
            missing = [d for d in by_driver if d not in self.slots]
            if self.reload_open:
                open_ids = await self.retry(self.store.open_drivers, what="list open drivers")
                mine = {d for d in open_ids if shard_of(d, self.shards) == self.shard and d not in self.slots}
                missing = sorted(set(missing) | mine)
            grouped = time.perf_counter()
            if missing:
                stored = await self.retry(lambda: self.store.load_drivers(missing), what="load drivers")
                for driver_id in missing:
                    found = stored.get(driver_id)
                    self.slots[driver_id] = activate(
                        driver_id,
                        found.timezone if found else "UTC",
                        found.snapshot if found else None,
                        found.readings if found else (),
                        self.rules,
                    )
            activated = time.perf_counter()
            self.reload_open = False
            output = fold_batch(
                self.slots, by_driver, self.rules, self.snapshot_every_events, self.shard, self.batch_no
            )
            if log_times:
                output = _merged(output, pass_log_times(self.slots, log_times, self.rules))
            idle = idle_drivers(self.slots, self.batch_no, self.idle_batches)
            for driver_id in idle:
                del self.slots[driver_id]
            (self.log.info if request_ids else self.log.debug)(
                "shard_batch_folded", batch=self.batch_no, readings=len(items), events=len(output.events),
                activated=len(missing), passivated=len(idle),
            )  # fmt: skip
            return ShardBatchDone(
                output, len(missing), len(idle), grouped - started, activated - grouped, time.perf_counter() - activated
            )

    def evict(self, driver_ids: Iterable[str] | None = None) -> int:
        """Forget drivers whose state may be ahead of what is durable (a failed batch); None forgets everyone.
        They reactivate from the store on their next reading."""
        self.reload_open = True
        if driver_ids is None:
            count = len(self.slots)
            self.slots.clear()
            return count
        return sum(self.slots.pop(d, None) is not None for d in driver_ids)

    def evict_partitions(self, partitions: Iterable[int]) -> int:
        """Forget the drivers last fed from these Kafka partitions (their consumer restarted)."""
        self.reload_open = True
        wanted = set(partitions)
        gone = [d for d, slot in self.slots.items() if slot.source_partition in wanted]
        for driver_id in gone:
            del self.slots[driver_id]
        return len(gone)


# -- persisting a batch ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PersistDone:
    """What one persisted batch did: the store's counts, timings (seconds), trips handed to the scorer."""

    result: WriteResult
    write_s: float
    project_s: float
    trips_handed: int


class PersistBatchHandler:
    """Durable, then visible, then scored: write through the EventStore (one transaction), project through
    the Projector, hand the ended trips to the ScorerSink (fire and forget; None = no scoring). A failed write
    raises (the consumer rewinds) and nothing is projected or scored; a failing sink is logged, never raised."""

    def __init__(
        self,
        store: EventStore,
        projector: Projector,
        scorer: ScorerSink | None = None,
        *,
        retry: Retry = run_once,
        log: Any = None,
    ) -> None:
        self.log = log if log is not None else get_logger("ingest")
        self.store = store
        self.projector = projector
        self.scorer = scorer
        self.retry = retry

    async def handle(self, batch: PersistBatch) -> PersistDone:
        with _bound(batch.request_ids):
            started = time.perf_counter()
            try:
                result = await self.retry(lambda: self.store.write_batch(batch), what="write batch to PostgreSQL")
            except Exception as error:
                self.log.warning("batch_not_written", error=repr(error)[:500], readings=len(batch.readings))
                raise
            written = time.perf_counter()
            await self.retry(lambda: self.projector.publish_batch(batch.outputs), what="publish projections to Redis")
            projected = time.perf_counter()
            handed = self._hand_to_scorer(batch.outputs)
            (self.log.info if batch.request_ids else self.log.debug)(
                "batch_persisted", readings=len(batch.readings), events=result.events_inserted,
                trips=result.trips_inserted, trips_to_scorer=handed,
            )  # fmt: skip
            return PersistDone(result, written - started, projected - written, handed)

    def _hand_to_scorer(self, outputs: Sequence[ShardOutput]) -> int:
        if self.scorer is None:
            return 0
        trips = ended_trips(outputs)
        if not trips:
            return 0
        try:
            self.scorer.submit(trips)
        except Exception as error:  # a scorer that is down loses nothing: its catch-up finds unscored trips
            self.log.warning("scorer_unreachable", error=repr(error)[:200], trips=len(trips))
            return 0
        return len(trips)


def _merged(folded: ShardOutput, passed: ShardOutput) -> ShardOutput:
    """The batch's fold, then what log time closed: per stream the versions stay ascending."""
    if not (passed.events or passed.snapshots):
        return folded
    newest = {s.driver_id: s for s in (*folded.snapshots, *passed.snapshots)}
    return ShardOutput(
        shard=folded.shard, events=[*folded.events, *passed.events], snapshots=[newest[d] for d in sorted(newest)],
        trips=[*folded.trips, *passed.trips], live=folded.live, late_readings=folded.late_readings,
    )


def _bound(request_ids: Sequence[str]):
    """Every log line inside carries the batch's request ids (structlog contextvars), when it has any."""
    return bound_contextvars(request_ids=list(request_ids)) if request_ids else nullcontext()
