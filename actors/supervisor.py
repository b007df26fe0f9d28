"""PipelineSupervisor: owns the ingest pipeline's actors, notices a dead one and brings it back.

A detached, named actor. Every `tick_s` it observes each pipeline actor (one status call with a timeout),
asks `usecases.supervision` what to do and does it: create a missing actor (detached, named, arguments by
value so nothing lives in the object store), start a run loop that ended, re-create the consumers when an
actor they hold a handle of was replaced. Ray restarts a crashed actor by itself; the supervisor covers what
Ray cannot. It owns the run() calls, so no CLI process is needed once it runs: `autoins serve` launches it and
watches, `autoins status`/`stop` reach it by name. It kicks its own loop from `__init__`, so after its own
restart it resumes without anyone calling it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time

import ray
from ray.exceptions import ActorUnavailableError, GetTimeoutError, RayActorError

from actors.consumer import IngestConsumer
from actors.driver_shard import DriverShard
from actors.maintenance import MaintenanceActor
from actors.persistence import Persistence
from actors.pipeline_metrics import LAG_EVERY_S, PipelineMetrics
from actors.risk_scorer import RiskScorer
from config.logging import configure_logging, get_logger
from storage.kafka.lag import WatermarkLag
from usecases.supervision import (
    LOOPING,
    Action,
    ActorSpec,
    ActorState,
    Observation,
    Role,
    Supervision,
    SupervisionRules,
    names_of,
    pipeline_specs,
)

SUPERVISOR_NAME = "pipeline-supervisor"
PROBE_TIMEOUT_S = 2.0
_STATUS_METHOD = {Role.CONSUMER: "status", Role.SHARD: "stats", Role.PERSISTENCE: "stats", Role.SCORER: "stats",
                  Role.MAINTENANCE: "stats"}


def supervisor_name(prefix: str = "") -> str:
    return f"{prefix}{SUPERVISOR_NAME}"


@ray.remote(num_cpus=0, max_restarts=-1, max_concurrency=16)
class PipelineSupervisor:
    def __init__(self, settings, prefix: str = "", tick_s: float = 1.0, rules: SupervisionRules | None = None) -> None:
        self.settings = settings
        self.prefix = prefix
        self.tick_s = tick_s
        self.namespace = ray.get_runtime_context().namespace
        configure_logging(settings.log_level, json=settings.log_json)
        self.log = get_logger("supervisor").bind(actor=supervisor_name(prefix), pid=os.getpid())
        specs = pipeline_specs(prefix, settings.kafka_num_consumers, settings.num_shards, settings.num_persistence,
                               maintenance=settings.maintenance_enabled)
        self.supervision = Supervision(specs, rules or SupervisionRules())
        self.specs = {s.name: s for s in specs}
        self.observed: dict[str, Observation] = {}
        self.stats: dict[str, dict] = {}
        self.loops: dict[str, ray.ObjectRef] = {}
        self.ticks = 0
        self.stopping = False
        self.running = False
        self.first_tick: asyncio.Event | None = None  # made on the actor's event loop, in run()
        self.metrics = PipelineMetrics(settings.kafka_topic_events, settings.kafka_consumer_group)
        self.restarts_counted: dict[str, int] = {}
        self.lag: dict[int, int] = {}
        self.lag_error: str | None = None
        # Kick the loop from here: after a crash Ray reruns __init__ and this call (retried until it runs).
        ray.get_runtime_context().current_actor.run.remote()

    @ray.method(max_task_retries=-1)
    async def run(self) -> None:
        if self.running:
            return
        self.running = True
        self.first_tick = asyncio.Event()
        self.log.info("supervisor_started", actors=len(self.specs))
        lag_task = asyncio.create_task(self._measure_lag_forever())
        while not self.stopping:
            started = time.monotonic()
            try:
                await self._tick()
            except Exception as error:  # supervision must outlive any one failure
                self.log.warning("supervisor_tick_failed", error=repr(error)[:300])
            self.first_tick.set()
            await asyncio.sleep(max(0.0, self.tick_s - (time.monotonic() - started)))
        lag_task.cancel()
        self.running = False

    async def _measure_lag_forever(self) -> None:
        """`kafka_consumer_lag` from outside the consumers (storage/kafka/lag.py): it keeps growing while a consumer
        is dead or stuck, which the consumer's own view cannot show. A failed measurement keeps the last values."""
        probe = WatermarkLag(self.settings)
        while not self.stopping:
            try:
                self.lag = await asyncio.wait_for(asyncio.to_thread(probe.measure), timeout=30)
                self.lag_error = None
                self.metrics.set_lag(self.lag)
            except Exception as error:
                self.lag_error = repr(error)[:200]
                self.log.warning("lag_measurement_failed", error=self.lag_error)
            await asyncio.sleep(LAG_EVERY_S)

    async def wait_ready(self, timeout_s: float = 60.0) -> dict:
        """Until the first tick created every actor; returns the status."""
        deadline = time.monotonic() + timeout_s
        while self.first_tick is None or not self.first_tick.is_set():
            if time.monotonic() > deadline:
                raise TimeoutError(f"the supervisor did not complete a tick in {timeout_s:.0f} s")
            await asyncio.sleep(0.05)
        return await self.status()

    async def status(self) -> dict:
        """Per actor: its state (alive / restarting / dead) and last stats; overall health. Never raises."""
        actors = {
            name: {"role": spec.role.value, "state": self.observed.get(name, Observation(ActorState.DEAD)).state.value,
                   **self.stats.get(name, {})}
            for name, spec in self.specs.items()
        }
        return {"supervisor": {"pid": os.getpid(), "ticks": self.ticks, "stopping": self.stopping},
                "health": self.supervision.health(self.observed), "actors": actors,
                "lag": {"partitions": dict(self.lag), "total": sum(self.lag.values()), "error": self.lag_error}}

    async def stop(self, timeout_s: float = 60.0) -> dict:
        """Stop consumers cleanly (in-flight batches finish and commit), then the scorer, then every actor."""
        self.stopping = True
        consumers = [self._handle(n) for n in names_of(self.specs.values(), Role.CONSUMER)]
        await asyncio.gather(*(c.stop.remote() for c in consumers if c), return_exceptions=True)
        loops = [ref for name, ref in self.loops.items() if self.specs[name].role is Role.CONSUMER]
        if loops:
            await asyncio.wait([asyncio.ensure_future(_awaitable(r)) for r in loops], timeout=timeout_s)
        scorer = self._handle(names_of(self.specs.values(), Role.SCORER)[0])
        if scorer is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(scorer.stop.remote(), timeout_s)
        handles = [h for h in (self._handle(n) for n in self.specs) if h is not None]
        others = [self._handle(n) for n, spec in self.specs.items() if spec.role is not Role.CONSUMER]
        await asyncio.gather(*(h.shutdown.remote() for h in others if h is not None), return_exceptions=True)
        for handle in handles:
            with contextlib.suppress(Exception):
                ray.kill(handle, no_restart=True)
        # Let the reconcile loop end before the caller kills this actor: a run() still in flight would be retried
        # (and Ray prints a warning on the driver's stdout) when the actor is killed.
        deadline = time.monotonic() + self.tick_s + PROBE_TIMEOUT_S + 5
        while self.running and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        self.log.info("supervisor_stopped")
        return {"stopped": len(handles)}

    # -- one tick -----------------------------------------------------------------------------------------
    async def _tick(self) -> None:
        self.ticks += 1
        names = list(self.specs)
        observations = await asyncio.gather(*(self._observe(self.specs[n]) for n in names))
        self.observed = dict(zip(names, observations, strict=True))
        decisions = self.supervision.reconcile(self.observed, time.monotonic())
        self._count_restarts()
        for decision in decisions:
            if self.stopping:
                return
            self.log.warning("supervisor_acting", action=decision.action.value, actor=decision.name,
                             reason=decision.reason)
            if decision.action is Action.CREATE:
                await self._create(self.specs[decision.name])
            elif decision.action is Action.START_LOOP:
                self._start_loop(decision.name)
            elif decision.action is Action.REBIND_CONSUMERS:
                await self._recreate_consumers()

    def _count_restarts(self) -> None:
        """`pipeline_actor_restarts_total`: each restart Ray made (a new pid) or re-creation, counted once (the
        first creation is not a restart)."""
        for name, past in self.supervision.history.items():
            total = past.restarts_seen + max(0, past.recreations - 1)
            new = total - self.restarts_counted.get(name, 0)
            if new > 0:
                self.metrics.restarted(self.specs[name].role.value, name, new)
            self.restarts_counted[name] = total

    async def _observe(self, spec: ActorSpec) -> Observation:
        handle = self._handle(spec.name)
        if handle is None:
            return Observation(ActorState.DEAD)
        try:
            stats = await asyncio.wait_for(getattr(handle, _STATUS_METHOD[spec.role]).remote(), PROBE_TIMEOUT_S)
        except (ActorUnavailableError, TimeoutError, GetTimeoutError):
            return Observation(ActorState.RESTARTING)
        except RayActorError:
            return Observation(ActorState.DEAD)
        except Exception as error:  # a bug in a status method must not look like a dead actor
            self.log.warning("supervisor_probe_failed", actor=spec.name, error=repr(error)[:200])
            return Observation(ActorState.RESTARTING)
        self.stats[spec.name] = stats
        loop = None
        if spec.role in LOOPING:
            loop = bool(stats.get("running")) or not self._loop_ended(spec.name)
        return Observation(ActorState.ALIVE, loop_running=loop, pid=stats.get("pid"))

    def _loop_ended(self, name: str) -> bool:
        ref = self.loops.get(name)
        if ref is None:
            return True
        ready, _ = ray.wait([ref], timeout=0)
        return bool(ready)

    # -- acting ------------------------------------------------------------------------------------------
    def _handle(self, name: str):
        try:
            return ray.get_actor(name, namespace=self.namespace)
        except ValueError:
            return None

    async def _create(self, spec: ActorSpec) -> None:
        old = self._handle(spec.name)
        if old is not None:  # not answering for too long: replace it
            with contextlib.suppress(Exception):
                ray.kill(old, no_restart=True)
            await self._until_gone(spec.name)
        if self.stopping:  # stop() began while this waited: create nothing it would then have to find and kill
            return
        # SPREAD: across the cluster's nodes, so one node's loss takes a part of the pipeline, never all of it.
        options = {"name": spec.name, "namespace": self.namespace, "lifetime": "detached", "get_if_exists": True,
                   "scheduling_strategy": "SPREAD"}
        s = self.settings
        if spec.role is Role.SCORER:
            RiskScorer.options(**options).remote(s)
        elif spec.role is Role.MAINTENANCE:
            MaintenanceActor.options(**options).remote(s, spec.name)
        elif spec.role is Role.SHARD:
            DriverShard.options(**options).remote(spec.index, s)
        elif spec.role is Role.PERSISTENCE:
            Persistence.options(**options).remote(spec.index, s, self._name(Role.SCORER))
        else:
            shards = [self._handle(n) for n in names_of(self.specs.values(), Role.SHARD)]
            persisters = [self._handle(n) for n in names_of(self.specs.values(), Role.PERSISTENCE)]
            IngestConsumer.options(**options).remote(spec.index, s.kafka_num_consumers, s, shards, persisters)
        self.loops.pop(spec.name, None)
        if spec.role in LOOPING:
            self._start_loop(spec.name)

    async def _recreate_consumers(self) -> None:
        for name in names_of(self.specs.values(), Role.CONSUMER):
            handle = self._handle(name)
            if handle is not None:
                with contextlib.suppress(Exception):
                    ray.kill(handle, no_restart=True)
                await self._until_gone(name)
            await self._create(self.specs[name])

    def _start_loop(self, name: str) -> None:
        handle = self._handle(name)
        if handle is not None:
            self.loops[name] = handle.run.remote()

    async def _until_gone(self, name: str, timeout_s: float = 10.0) -> None:
        deadline = time.monotonic() + timeout_s
        while self._handle(name) is not None and time.monotonic() < deadline:
            await asyncio.sleep(0.1)

    def _name(self, role: Role) -> str:
        return names_of(self.specs.values(), role)[0]


async def _awaitable(ref):
    with contextlib.suppress(Exception):
        return await ref
