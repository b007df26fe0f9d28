"""RiskScorer: the Ray shell of the scorer (usecases/scoring.py), off the ingest path (docs/SCORING.md).

Persistence actors hand over each committed batch's ended trips in one fire-and-forget call (`submit`); the
use case decides when to score (flush interval, full batch, backoff, catch-up) and scores every unscored trip
of the pending drivers in trip order. This actor only wires the adapters (PostgreSQL score store, Redis
publisher, the RiskModel Serve client), runs the loop that sleeps until the schedule says or a submission
wakes it, logs failures at most every 30 s and records metrics. One scorer is the single writer of the risk
streams. Constructor is cheap: pools, the Serve handle and metrics are built on first use.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any

import ray

from actors.common import ActorContext
from config.rules import rules_in_force
from domain.pricing import DEFAULT_RULES, PricingRules
from domain.scoring import EndedTrip
from storage.postgres.partitions import PartitionCache
from storage.postgres.score_store import PostgresScoreStore
from storage.redis.score_projection import RedisScorePublisher
from storage.serve.risk_model import ServeRiskModel
from usecases.ports.clock import SystemClock
from usecases.scoring import Scorer, Stepped
from usecases.scoring_round import ScoringRound
from usecases.scoring_schedule import ScheduleRules

MAX_DRIVERS_PER_ROUND = 2_000  # bounds one round's queries, model call and transaction
MAX_TRIPS_PER_ROUND = 2_000
MODEL_TIMEOUT_S = 15.0
MAX_BACKOFF_S = 30.0
LOG_EVERY_S = 30.0
BATCH_BOUNDARIES = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000]


@ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=0)
class RiskScorer:
    def __init__(
        self,
        settings,
        *,
        flush_interval_s: float = 1.0,
        catchup_every_s: float = 60.0,
        catchup_batch: int = 1_000,
        max_backoff_s: float = MAX_BACKOFF_S,
        rules: PricingRules = DEFAULT_RULES,
    ) -> None:
        self.ctx = ActorContext(settings, "risk-scorer")
        clock = SystemClock()
        scoring_round = ScoringRound(
            store=_OnFirstUse(self._store),
            model=ServeRiskModel(batch_timeout_s=MODEL_TIMEOUT_S),
            publisher=_OnFirstUse(self._publisher),
            window_days=float(settings.scoring_window_days),
            rules=rules,
            rules_version=rules_in_force(settings, rules, self.ctx.trip_rules).version,
            clock=clock,
            retry=self._retry,
            max_trips=MAX_TRIPS_PER_ROUND,
        )
        schedule = ScheduleRules(
            flush_interval_s=flush_interval_s,
            batch_size=settings.ml_batch_size,
            max_drivers=MAX_DRIVERS_PER_ROUND,
            catchup_every_s=catchup_every_s,
            catchup_batch=catchup_batch,
            first_backoff_s=min(1.0, max_backoff_s),
            max_backoff_s=max_backoff_s,
        )
        self.scorer = Scorer(scoring_round, clock, schedule)
        self.stopping = False
        self.running = False
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task | None = None
        self._logged_at: dict[str, float] = {}
        self._metrics: tuple | None = None

    # -- calls -------------------------------------------------------------------------------------------
    async def submit(self, trips: list[EndedTrip]) -> int:
        """Queue ended trips (one call per persisted batch; the caller does not wait). Returns pending drivers."""
        if self.scorer.submit(trips) and self._wake is not None:
            self._wake.set()
        return self.scorer.schedule.pending_drivers

    @ray.method(max_task_retries=-1)
    async def run(self) -> dict:
        """Score until `stop()`. Infinite task retries: after a crash Ray restarts the actor and calls `run`
        again, which starts with a catch-up, so work pending in the dead process is found again."""
        if self.running:
            return {"already_running": True}
        self.running = True
        self._wake = asyncio.Event()
        self.ctx.log.info("risk_scorer_started", window_days=self.ctx.settings.scoring_window_days)
        self._task = asyncio.create_task(self._loop())
        try:
            await self._task
        except asyncio.CancelledError:
            self.ctx.log.warning("risk_scorer_cancelled", pending=self.scorer.schedule.pending_drivers)
        finally:
            self.running = False
        return await self.stats()

    async def stop(self, grace_s: float = 5.0) -> None:
        """Finish the current round (up to `grace_s`: a round waiting out an outage is cancelled); pending
        trips are left to the next start's catch-up."""
        self.stopping = True
        if self._wake is not None:
            self._wake.set()
        if self._task is not None and not self._task.done():
            done, _ = await asyncio.wait([self._task], timeout=grace_s)
            if not done:
                self._task.cancel()

    async def stats(self) -> dict:
        return {**self.scorer.stats(), "running": self.running, "pid": self.ctx.pid,
                "node": self.ctx.node_id}

    async def shutdown(self) -> None:
        await self.stop()
        await self.ctx.close()

    # -- the loop ----------------------------------------------------------------------------------------
    async def _loop(self) -> None:
        while not self.stopping:
            self._wake.clear()  # a submission during the step sets it again
            stepped = await self.scorer.step()
            if stepped.kind == "wait":
                timeout_s = max(0.0, (stepped.wait_until_s or 0.0) - time.monotonic())
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=timeout_s)
            else:
                self._observe(stepped)

    def _observe(self, stepped: Stepped) -> None:
        pending = self.scorer.schedule.pending_drivers
        if stepped.failure == "risk_model_unavailable":
            self._count("unavailable", 1)
        if stepped.failure is not None and stepped.error is not None:
            self._failed(stepped.failure, stepped.error, pending=pending, retry_in_s=stepped.retry_in_s)
        elif stepped.kind == "catchup" and stepped.found:
            self.ctx.log.info("risk_catchup", trips=stepped.found)
        elif stepped.result is not None and stepped.result.scored:
            self._count("scored", stepped.result.drivers, batch=stepped.result.drivers,
                        scores=stepped.result.scores_inserted)

    # -- adapters, built on first use --------------------------------------------------------------------
    async def _store(self) -> PostgresScoreStore:
        return PostgresScoreStore(await self.ctx.pool(max_size=2), PartitionCache())

    async def _publisher(self) -> RedisScorePublisher:
        return RedisScorePublisher(self.ctx.redis(), recent_per_driver=self.ctx.settings.ws_recent_messages)

    async def _retry(self, operation: Callable[[], Awaitable[Any]], what: str) -> Any:
        return await self.ctx.retry(operation, what=what)

    # -- observation -------------------------------------------------------------------------------------
    def _failed(self, what: str, error: BaseException, **fields) -> None:
        now = time.monotonic()
        if now - self._logged_at.get(what, -LOG_EVERY_S) >= LOG_EVERY_S:
            self._logged_at[what] = now
            self.ctx.log.warning(what, error=repr(error)[:300], **fields)

    def _count(self, kind: str, drivers: int, batch: int = 0, scores: int = 0) -> None:
        try:
            if self._metrics is None:
                from ray.util.metrics import Counter, Histogram

                self._metrics = (
                    Counter("risk_scored_drivers_total", description="Drivers re-scored after trips ended."),
                    Counter("risk_model_unavailable_total", description="Scoring rounds put off: model unavailable."),
                    Histogram(
                        "risk_scoring_batch_size", description="Drivers per scoring round.", boundaries=BATCH_BOUNDARIES
                    ),
                    Counter("risk_scores_written", description="Scores stored (one per trip end; Ray adds _total)."),
                )
            scored, unavailable, sizes, written = self._metrics
            if kind == "scored":
                scored.inc(drivers)
                sizes.observe(batch)
                if scores:
                    written.inc(scores)
            else:
                unavailable.inc(drivers)
        except Exception as error:  # metrics must never stop scoring
            self._failed("risk_metrics_failed", error)


class _OnFirstUse:
    """A port adapter built by `build` on its first call (constructors stay cheap: STYLE habit 8)."""

    def __init__(self, build: Callable[[], Awaitable[Any]]) -> None:
        self._build = build
        self._target: Any = None

    def __getattr__(self, name: str) -> Callable[..., Awaitable[Any]]:
        async def call(*args, **kwargs):
            if self._target is None:
                self._target = await self._build()
            return await getattr(self._target, name)(*args, **kwargs)

        return call
