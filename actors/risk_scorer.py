"""RiskScorer: re-scores drivers whose trips ended, in batches, off the ingest path (docs/SCORING.md).

Persistence actors hand over each committed batch's ended trips in one fire-and-forget call (`submit`);
the scorer keeps each driver's latest pending trip and, every `flush_interval_s` (or as soon as
`ml_batch_size` drivers wait), scores them all: one query loads their windows and policies, one
`assess_many` call goes to the RiskModel Serve deployment, domain.scoring builds the events, one
transaction stores them (storage.postgres.score_store), one pipeline projects them (storage.redis.score_projection).

Nothing is lost while the model is away: the pending set is kept and retried with backoff (logged at most
every 30 s), and a catch-up query (at start and every `catchup_every_s`) re-finds drivers whose latest trip
has no score, e.g. after this actor died with work pending. One scorer is the single writer of the risk
streams. Constructor is cheap: pools, the Serve handle and metrics are built on first use.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

import ray

from actors.common import ActorContext
from config.names import RISK_APP, RISK_DEPLOYMENT
from domain.features import driver_features
from domain.pricing import DEFAULT_RULES, PricingRules
from domain.risk_assessment import RiskAssessment, ScoreRequest
from domain.scoring import EndedTrip, ScoringOutcome, coalesce, score_all
from storage.postgres.partitions import PartitionCache
from storage.postgres.score_store import (
    ScoreWriteResult,
    StalePolicy,
    load_scoring_inputs,
    unscored_latest_trips,
    write_scores,
)
from storage.redis.score_projection import plan_scores, publish_scores, scored_driver

MAX_DRIVERS_PER_ROUND = 2_000  # bounds one round's query, model call and transaction
MODEL_TIMEOUT_S = 15.0
MAX_BACKOFF_S = 30.0
LOG_EVERY_S = 30.0
# ray.serve._private.constants (Ray 2.60); spelled out because importing them would import ray.serve
SERVE_CONTROLLER_NAME, SERVE_NAMESPACE = "SERVE_CONTROLLER_ACTOR", "serve"
BATCH_BOUNDARIES = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000]


class ModelUnavailable(Exception):
    """The RiskModel deployment is missing, not ready, or did not answer in time."""


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
        self.flush_interval_s = flush_interval_s
        self.catchup_every_s = catchup_every_s
        self.catchup_batch = catchup_batch
        self.max_backoff_s = max_backoff_s
        self.rules = rules
        self.window_days = float(settings.scoring_window_days)
        self.pending: dict[str, EndedTrip] = {}
        self.first_pending_at: float | None = None
        self.retry_at = 0.0
        self.next_catchup_at = 0.0  # at start
        self.backoff_s = 0.0
        self.stopping = False
        self.running = False
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task | None = None
        self._handle = None
        self._partitions = PartitionCache()
        self._logged_at: dict[str, float] = {}
        self._metrics: tuple | None = None
        self.totals = {
            "submitted": 0, "rounds": 0, "scored": 0, "scores_inserted": 0, "events_inserted": 0,
            "policies_updated": 0, "model_unavailable": 0, "errors": 0, "stale_policies": 0, "catchups": 0,
            "catchup_found": 0, "last_round_ms": None, "last_round_phases_ms": {}, "last_error": None,
        }  # fmt: skip

    # -- calls -------------------------------------------------------------------------------------------
    async def submit(self, trips: list[EndedTrip]) -> int:
        """Queue ended trips (one call per persisted batch; the caller does not wait). Returns pending count."""
        self.totals["submitted"] += len(trips)
        self._add(trips)
        return len(self.pending)

    @ray.method(max_task_retries=-1)
    async def run(self) -> dict:
        """Score until `stop()`. Infinite task retries: after a crash Ray restarts the actor and calls `run`
        again, which starts with a catch-up, so work pending in the dead process is found again."""
        if self.running:
            return {"already_running": True}
        self.running = True
        self._wake = asyncio.Event()
        self.ctx.log.info("risk_scorer_started", window_days=self.window_days)
        self._task = asyncio.create_task(self._loop())
        try:
            await self._task
        except asyncio.CancelledError:
            self.ctx.log.warning("risk_scorer_cancelled", pending=len(self.pending))
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
        return {**self.totals, "pending": len(self.pending), "running": self.running, "pid": self.ctx.pid}

    async def shutdown(self) -> None:
        await self.stop()
        await self.ctx.close()

    # -- the loop ----------------------------------------------------------------------------------------
    async def _loop(self) -> None:
        while not self.stopping:
            now = time.monotonic()
            if now >= self.next_catchup_at:
                await self._catch_up()
            elif self._due(now):
                await self._round()
            else:
                await self._sleep_until_due(now)

    def _add(self, trips) -> None:
        first = self.first_pending_at is None
        if coalesce(self.pending, trips) and first:
            self.first_pending_at = time.monotonic()
        # wake the loop to set its deadline (first pending) or to score at once (a full batch)
        if self._wake is not None and self.pending and (first or len(self.pending) >= self.ctx.settings.ml_batch_size):
            self._wake.set()

    def _due(self, now: float) -> bool:
        if not self.pending or now < self.retry_at:
            return False
        full = len(self.pending) >= self.ctx.settings.ml_batch_size
        return full or now - (self.first_pending_at or now) >= self.flush_interval_s

    async def _sleep_until_due(self, now: float) -> None:
        wake_at = self.next_catchup_at
        if self.pending:
            wake_at = min(wake_at, max(self.retry_at, (self.first_pending_at or now) + self.flush_interval_s))
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=max(0.0, wake_at - now))

    async def _catch_up(self) -> None:
        self.totals["catchups"] += 1
        self.next_catchup_at = time.monotonic() + self.catchup_every_s
        try:
            pool = await self.ctx.pool(max_size=2)
            found = await unscored_latest_trips(pool, self.window_days, self.catchup_batch)
        except Exception as error:  # the next catch-up tries again; live submissions still flow
            self._failed("catchup_failed", error)
            return
        self.totals["catchup_found"] += len(found)
        if found:
            self.ctx.log.info("risk_catchup", drivers=len(found))
            self._add(found)
            if len(found) >= self.catchup_batch:  # more may be waiting: look again after this round
                self.next_catchup_at = time.monotonic() + self.flush_interval_s

    async def _round(self) -> None:
        chosen = sorted(self.pending)[:MAX_DRIVERS_PER_ROUND]
        trips = [self.pending.pop(d) for d in chosen]
        self.first_pending_at = time.monotonic() if self.pending else None
        started = time.perf_counter()
        try:
            scored = await self._score(trips)
        except Exception as error:
            self._add(trips)  # newer trips that arrived meanwhile win
            self.backoff_s = min(self.max_backoff_s, max(1.0, self.backoff_s * 2))
            self.retry_at = time.monotonic() + self.backoff_s
            if isinstance(error, ModelUnavailable):
                self.totals["model_unavailable"] += 1
                self._count("unavailable", 1)
                self._failed("risk_model_unavailable", error, pending=len(self.pending), retry_in_s=self.backoff_s)
            else:
                self.totals["errors"] += 1
                self._failed("risk_scoring_failed", error, pending=len(self.pending), retry_in_s=self.backoff_s)
            return
        self.backoff_s = 0.0
        self.totals["rounds"] += 1
        self.totals["scored"] += scored
        self.totals["last_round_ms"] = round((time.perf_counter() - started) * 1000, 1)
        self._count("scored", scored, batch=len(trips))

    async def _score(self, trips: list[EndedTrip]) -> int:
        handle = await self._model()
        settings = self.ctx.settings
        pool = await self.ctx.pool(max_size=2)
        clock = _Stopwatch()
        inputs = await self.ctx.retry(
            lambda: load_scoring_inputs(pool, trips, self.window_days), what="load scoring inputs"
        )
        clock.lap("load")
        by_driver = {t.driver_id: t for t in trips}
        features = {d: driver_features(inputs.trips[d], self.window_days) for d in by_driver}
        requests = [ScoreRequest(driver_id=d, features=tuple(features[d].to_vector().tolist())) for d in by_driver]
        clock.lap("features")
        assessments = await self._assess(handle, requests)
        clock.lap("model")
        annual_km = {d: f.annual_km for d, f in features.items()}
        policies = inputs.policies
        for attempt in range(3):
            outcomes = score_all(assessments, by_driver, annual_km, policies, self.rules)
            try:
                result = await self._write(pool, outcomes)
                break
            except StalePolicy:
                self.totals["stale_policies"] += 1
                if attempt == 2:
                    raise
                policies = (await load_scoring_inputs(pool, trips, self.window_days)).policies
        clock.lap("write")
        self.totals["scores_inserted"] += result.scores_inserted
        self.totals["events_inserted"] += result.events_inserted
        self.totals["policies_updated"] += result.policies_updated
        plan = plan_scores(
            [scored_driver(by_driver[o.risk_scored.driver_id], _stored(o, result.stored)) for o in outcomes]
        )
        redis = self.ctx.redis()
        await self.ctx.retry(
            lambda: publish_scores(redis, plan, recent_per_driver=settings.ws_recent_messages),
            what="publish risk scores to Redis",
        )
        clock.lap("publish")
        self.totals["last_round_phases_ms"] = clock.laps
        return len(outcomes)

    async def _write(self, pool, outcomes: list[ScoringOutcome]) -> ScoreWriteResult:
        return await self.ctx.retry(lambda: write_scores(pool, outcomes, self._partitions), what="write risk scores")

    # -- the model, through a named Serve handle ---------------------------------------------------------
    async def _model(self):
        if self._handle is None:
            try:
                self._handle = await asyncio.to_thread(_deployment_handle)
            except Exception as error:
                raise ModelUnavailable(f"no {RISK_DEPLOYMENT} in Serve app {RISK_APP!r}: {error!r}"[:300]) from None
        return self._handle

    async def _assess(self, handle, requests: list[ScoreRequest]) -> list[RiskAssessment]:
        async def call():
            return await handle.assess_many.remote(requests)

        try:
            assessments = await asyncio.wait_for(call(), timeout=MODEL_TIMEOUT_S)
        except Exception as error:  # ModelNotReady, replica or controller gone, timeout: all mean "later"
            self._handle = None  # the app may have been redeployed or deleted: look it up again next time
            raise ModelUnavailable(repr(error)[:300]) from None
        if [a.driver_id for a in assessments] != [r.driver_id for r in requests]:
            raise RuntimeError(f"{RISK_DEPLOYMENT} answered {len(assessments)} assessments for {len(requests)}")
        return list(assessments)

    # -- observation -------------------------------------------------------------------------------------
    def _failed(self, what: str, error: BaseException, **fields) -> None:
        self.totals["last_error"] = repr(error)[:300]
        now = time.monotonic()
        if now - self._logged_at.get(what, -LOG_EVERY_S) >= LOG_EVERY_S:
            self._logged_at[what] = now
            self.ctx.log.warning(what, error=repr(error)[:300], **fields)

    def _count(self, kind: str, drivers: int, batch: int = 0) -> None:
        try:
            if self._metrics is None:
                from ray.util.metrics import Counter, Histogram

                self._metrics = (
                    Counter("risk_scored_drivers_total", description="Drivers re-scored after a trip ended."),
                    Counter("risk_model_unavailable_total", description="Scoring rounds put off: model unavailable."),
                    Histogram(
                        "risk_scoring_batch_size", description="Drivers per scoring round.", boundaries=BATCH_BOUNDARIES
                    ),
                )
            scored, unavailable, sizes = self._metrics
            if kind == "scored":
                scored.inc(drivers)
                sizes.observe(batch)
            else:
                unavailable.inc(drivers)
        except Exception as error:  # metrics must never stop scoring
            self._failed("risk_metrics_failed", error)


class _Stopwatch:
    """Milliseconds per phase of a round (`stats()["last_round_phases_ms"]`), for operators and tuning."""

    def __init__(self) -> None:
        self.laps: dict[str, float] = {}
        self._at = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps[name] = round((now - self._at) * 1000, 1)
        self._at = now


def _stored(outcome: ScoringOutcome, stored: dict) -> list:
    events = [outcome.risk_scored] if outcome.premium_quoted is None else [outcome.risk_scored, outcome.premium_quoted]
    return [stored[e.event_id] for e in events if e.event_id in stored]


def _deployment_handle():
    """Blocking (controller round trips): run in a thread. Probes for Serve's controller first, so a cluster
    without Serve (ingest-only runs, the pipeline tests) never pays for importing ray.serve."""
    ray.get_actor(SERVE_CONTROLLER_NAME, namespace=SERVE_NAMESPACE)  # ValueError when Serve is not running
    from ray import serve

    return serve.get_deployment_handle(RISK_DEPLOYMENT, app_name=RISK_APP)
