"""The scorer as plain code: the schedule decides, the round acts, the counters keep score (docs/SCORING.md).

`Scorer.step()` does one thing the schedule asks for (a catch-up, a round) or returns how long to wait; the
RiskScorer actor is a loop around it that sleeps until then or until `submit` says to wake. Tests drive it
with a FakeClock and the fakes, no Ray.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from domain.scoring import EndedTrip
from usecases.ports.clock import Clock
from usecases.ports.risk_model import RiskModelUnavailable
from usecases.scoring_round import RoundResult, ScoringRound
from usecases.scoring_schedule import CatchUp, ScheduleRules, ScoreRound, ScoringSchedule, Wait


def new_totals() -> dict:
    """The counters `RiskScorer.stats()` reports (autoins/pipeline.py and the tests read these keys)."""
    return {
        "submitted": 0, "rounds": 0, "scored": 0, "scores_inserted": 0, "events_inserted": 0,
        "policies_updated": 0, "model_unavailable": 0, "errors": 0, "stale_policies": 0, "catchups": 0,
        "catchup_found": 0, "last_round_ms": None, "last_round_phases_ms": {}, "last_error": None,
    }  # fmt: skip


@dataclass(frozen=True, slots=True)
class Stepped:
    """What one `step` did: `kind` is "wait", "round", "catchup"; `failure` names a failed step's kind
    ("risk_model_unavailable", "risk_scoring_failed", "catchup_failed") with its error."""

    kind: str
    wait_until_s: float | None = None
    result: RoundResult | None = None
    found: int = 0
    failure: str | None = None
    error: BaseException | None = None
    retry_in_s: float | None = None


@dataclass
class Scorer:
    round: ScoringRound
    clock: Clock
    rules: ScheduleRules = field(default_factory=ScheduleRules)
    schedule: ScoringSchedule = field(init=False)
    totals: dict = field(default_factory=new_totals)

    def __post_init__(self) -> None:
        self.schedule = ScoringSchedule(self.rules, self.clock.monotonic_s())

    def submit(self, trips: Sequence[EndedTrip]) -> bool:
        """Queue ended trips; True when the loop should wake to re-decide."""
        self.totals["submitted"] += len(trips)
        return self.schedule.submit(trips, self.clock.monotonic_s())

    async def step(self) -> Stepped:
        action = self.schedule.next_action(self.clock.monotonic_s())
        if isinstance(action, Wait):
            return Stepped("wait", wait_until_s=action.until_s)
        if isinstance(action, CatchUp):
            return await self._catch_up(action)
        return await self._round()

    async def _catch_up(self, action: CatchUp) -> Stepped:
        self.totals["catchups"] += 1
        self.schedule.catchup_started(self.clock.monotonic_s())
        try:
            found = await self.round.find_unscored(action.limit)
        except Exception as error:  # the next catch-up tries again; live submissions still flow
            self.schedule.catchup_failed(self.clock.monotonic_s())
            self.totals["last_error"] = repr(error)[:300]
            return Stepped("catchup", failure="catchup_failed", error=error)
        self.totals["catchup_found"] += len(found)
        self.schedule.catchup_done(found, self.clock.monotonic_s())
        return Stepped("catchup", found=len(found))

    async def _round(self) -> Stepped:
        started = self.clock.monotonic_s()
        work: ScoreRound = self.schedule.take_round(started)
        try:
            result = await self.round.score(work.drivers, work.known)
        except Exception as error:
            retry_in_s = self.schedule.round_failed(work, self.clock.monotonic_s())
            unavailable = isinstance(error, RiskModelUnavailable)
            self.totals["model_unavailable" if unavailable else "errors"] += 1
            self.totals["last_error"] = repr(error)[:300]
            failure = "risk_model_unavailable" if unavailable else "risk_scoring_failed"
            return Stepped("round", failure=failure, error=error, retry_in_s=retry_in_s)
        self.schedule.round_done(work, result.more, self.clock.monotonic_s())
        t = self.totals
        t["rounds"] += 1
        t["scored"] += result.scored
        t["scores_inserted"] += result.scores_inserted
        t["events_inserted"] += result.events_inserted
        t["policies_updated"] += result.policies_updated
        t["stale_policies"] += result.stale_policies
        t["last_round_ms"] = round((self.clock.monotonic_s() - started) * 1000, 1)
        t["last_round_phases_ms"] = result.phases_ms
        return Stepped("round", result=result)

    def stats(self) -> dict:
        return {**self.totals, "pending": self.schedule.pending_drivers}
