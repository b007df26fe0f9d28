"""A staged rollout, start to end (docs/OPERATIONS.md "Staged rollout"; plan §12).

    begin (one rollout per target) → deploy the canary at 0 % → one request through the ingress →
    for each step (10, 50, 100 %): set the split, soak, judging the canary every check interval →
    keep the old side for `keep_old_s` (still judging: a rollback is one split write away) →
    promote (the stable app runs the new build) → split cleared → canary removed.

Any trigger (domain/rollout.py `judge`), a canary that cannot be deployed or does not answer, or a step that never
sees enough requests to be judged, rolls back: the split is cleared first (every client is on the stable side
within a replica's split check), then the canary app is removed. The old side is never touched before promotion,
so its clients see no failure from a rollout that rolls back.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

from domain.rollout import DEFAULT_STEPS, SideHealth, TrafficSplit, Triggers, Verdict, judge
from usecases.ports.rollout import CanaryHealth, DeployFailed, RolloutSides, TrafficSplits, Waiter


@dataclass(frozen=True, slots=True)
class RolloutPlan:
    steps: tuple[int, ...] = DEFAULT_STEPS
    soak_s: float = 120.0
    check_interval_s: float = 5.0
    window_s: float = 60.0
    keep_old_s: float = 600.0
    triggers: Triggers = field(default_factory=Triggers)
    max_holds: int = 2  # extra soaks a step may wait for enough requests before it rolls back
    drain_s: float = 2.0  # after the split is cleared, before the canary goes: every replica's split check passes


class Outcome(StrEnum):
    PROMOTED = "promoted"
    ROLLED_BACK = "rolled_back"
    REFUSED = "refused"  # another rollout of the target is under way
    PROMOTION_FAILED = "promotion_failed"  # the canary serves everyone; the stable app did not take the build


@dataclass(frozen=True, slots=True)
class Check:
    """One judgement: when (seconds since the rollout began), at which share, what Prometheus said, the verdict."""

    at_s: float
    percent: int
    health: SideHealth
    verdict: Verdict
    reason: str


@dataclass
class RolloutReport:
    target: str
    version: str
    outcome: Outcome = Outcome.ROLLED_BACK
    reason: str = ""
    reached_percent: int = 0
    checks: list[Check] = field(default_factory=list)
    seconds: float = 0.0


class RolledBack(Exception):
    pass


class Rollout:
    def __init__(self, target: str, sides: RolloutSides, splits: TrafficSplits, health: CanaryHealth, waiter: Waiter,
                 plan: RolloutPlan, on_event: Callable[[str], None] = lambda _text: None) -> None:
        self._target = target
        self._sides = sides
        self._splits = splits
        self._health = health
        self._waiter = waiter
        self._plan = plan
        self._say = on_event

    async def run(self, version: str) -> RolloutReport:
        report = RolloutReport(self._target, version)
        started = self._waiter.monotonic_s()
        split = TrafficSplit(target=self._target, version=version, canary_app=self._sides.canary_app, percent=0)
        in_force = await self._splits.begin(split)
        if in_force is not None:
            report.outcome = Outcome.REFUSED
            report.reason = (f"a rollout of {self._target} to {in_force.version} is under way at {in_force.percent} % "
                             f"(`autoins rollout {self._target} --abort` ends it)")
            return report
        try:
            await self._deploy(version)
            for percent in self._plan.steps:
                await self._splits.write(TrafficSplit(target=self._target, version=version,
                                                      canary_app=self._sides.canary_app, percent=percent))
                report.reached_percent = percent
                self._say(f"{percent} % of clients on {version}; soaking {self._plan.soak_s:g} s")
                await self._soak(report, percent, started)
            if self._plan.keep_old_s > 0:
                self._say(f"100 % on {version}; keeping the old side {self._plan.keep_old_s:g} s for a rollback")
                await self._watch(report, 100, started, self._plan.keep_old_s, need_verdict=False)
        except (RolledBack, DeployFailed) as reason:
            await self._roll_back(report, str(reason))
        except Exception as error:  # cannot judge (Prometheus gone, Redis gone…): the safe side is the old one
            await self._roll_back(report, f"the rollout failed: {type(error).__name__}: {str(error)[:200]}")
        except BaseException:  # Ctrl-C, cancelled: leave no client on a build nobody is watching
            await self.abort()
            raise
        else:
            await self._promote(report, version)
        report.seconds = self._waiter.monotonic_s() - started
        return report

    async def _promote(self, report: RolloutReport, version: str) -> None:
        """The split stays at 100 % on the canary until the stable app runs the new build: no client sees the old
        build again, and a promotion that fails leaves the healthy canary serving everyone."""
        self._say(f"promoting {version} to the stable app")
        try:
            await self._sides.promote(version)
        except DeployFailed as error:
            report.outcome = Outcome.PROMOTION_FAILED
            report.reason = (f"{error}; {self._sides.canary_app} still serves every client: rerun the rollout, or "
                             f"`autoins rollout {self._target} --abort` to go back to the old build")
            return
        await self.abort()
        report.outcome, report.reason = Outcome.PROMOTED, f"{version} serves every client"

    async def _roll_back(self, report: RolloutReport, reason: str) -> None:
        report.outcome, report.reason = Outcome.ROLLED_BACK, reason
        self._say(f"rolling back: {reason}")
        await self.abort()

    async def abort(self) -> None:
        """Every client to the stable side first, then (once every replica has read that) the canary away: what a
        rollback, a promotion's end and `--abort` do."""
        await self._splits.clear(self._target)
        await self._waiter.sleep(self._plan.drain_s)
        await self._sides.remove_canary()

    async def _deploy(self, version: str) -> None:
        self._say(f"deploying {version} as {self._sides.canary_app} (no traffic yet)")
        await self._sides.deploy_canary(version)
        await self._sides.check_canary()

    async def _soak(self, report: RolloutReport, percent: int, started: float) -> None:
        for _ in range(1 + self._plan.max_holds):
            if await self._watch(report, percent, started, self._plan.soak_s, need_verdict=True):
                return
            self._say(f"{percent} %: {report.checks[-1].reason}; holding another {self._plan.soak_s:g} s")
        raise RolledBack(f"at {percent} %: {report.checks[-1].reason} after {1 + self._plan.max_holds} soaks")

    async def _watch(self, report: RolloutReport, percent: int, started: float, seconds: float,
                     *, need_verdict: bool) -> bool:
        """Judge every check interval for `seconds`; roll back on a trigger. True when the last check was healthy."""
        until = self._waiter.monotonic_s() + seconds
        healthy = False
        while True:
            await self._waiter.sleep(min(self._plan.check_interval_s, max(0.0, until - self._waiter.monotonic_s())))
            health = await self._health.health(self._sides.canary_app, self._plan.window_s)
            verdict, reason = judge(health, self._plan.triggers)
            report.checks.append(Check(self._waiter.monotonic_s() - started, percent, health, verdict, reason))
            if verdict is Verdict.ROLL_BACK:
                raise RolledBack(f"at {percent} %: {reason}")
            healthy = verdict is Verdict.HEALTHY
            if self._waiter.monotonic_s() >= until:
                return healthy or not need_verdict
