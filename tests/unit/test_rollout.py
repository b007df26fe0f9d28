"""Staged rollout as decisions: who goes to the canary, when a step may grow, and the order of a rollout's moves
(the split before the canary on the way out, promotion before the split is cleared on the way up)."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.rollout import (
    SideHealth,
    SplitError,
    TrafficSplit,
    Triggers,
    Verdict,
    canary_bucket,
    goes_to_canary,
    judge,
    parse_steps,
)
from usecases.ports.rollout import DeployFailed
from usecases.rollout import Outcome, Rollout, RolloutPlan

TRIGGERS = Triggers(max_error_rate=0.01, max_p95_s=0.3, min_requests=20)


@pytest.mark.parametrize(("text", "steps"), [("10,50,100", (10, 50, 100)), ("100", (100,)), (" 1, 100 ", (1, 100))])
def test_steps_parse(text, steps):
    assert parse_steps(text) == steps


@pytest.mark.parametrize("text", ["", "10,50", "50,10,100", "0,100", "10,10,100", "10,ten,100", "10,150"])
def test_steps_that_cannot_be_followed_are_refused_with_the_text(text):
    with pytest.raises(SplitError, match="steps"):
        parse_steps(text)


@given(st.text(min_size=1, max_size=60), st.integers(0, 100), st.integers(0, 100))
def test_a_client_on_the_canary_stays_on_it_as_the_share_grows(key, low, high):
    low, high = sorted((low, high))
    assert 0 <= canary_bucket(key) < 100
    if goes_to_canary(key, low):
        assert goes_to_canary(key, high)
    assert not goes_to_canary(key, 0)
    assert goes_to_canary(key, 100)


def test_buckets_spread_clients_evenly_enough_for_a_10_percent_step():
    on_canary = sum(goes_to_canary(f"Bearer token-{i}", 10) for i in range(10_000))
    assert 800 < on_canary < 1200


def test_a_split_this_build_cannot_read_is_no_split():
    split = TrafficSplit(target="api", version="v2", canary_app="api-canary", percent=10)
    assert TrafficSplit.decode(split.encode()) == split
    for garbage in (None, b"", b"{", b'{"target":"api"}', b'{"target":"api","version":"v","canary_app":"c",'
                                                          b'"percent":140}'):
        assert TrafficSplit.decode(garbage) is None


@pytest.mark.parametrize(("health", "verdict"), [
    (SideHealth(100, 0.0, 0.05), Verdict.HEALTHY),
    (SideHealth(100, 0.02, 0.05), Verdict.ROLL_BACK),
    (SideHealth(3, 2 / 3, 0.05), Verdict.ROLL_BACK),  # a broken build need not wait for min_requests
    (SideHealth(100, 0.0, 0.45), Verdict.ROLL_BACK),
    (SideHealth(5, 0.0, 0.45), Verdict.TOO_FEW_REQUESTS),  # a slow handful is not yet a slow build
    (SideHealth(0, None, None), Verdict.TOO_FEW_REQUESTS),
    (SideHealth(100, 0.01, 0.3), Verdict.HEALTHY),  # the thresholds themselves pass: "> 1 %", "> 300 ms"
])
def test_judge_follows_the_plan_s_triggers(health, verdict):
    assert judge(health, TRIGGERS)[0] is verdict


# -- the rollout's moves, against fakes ----------------------------------------------------------------


class FakeWaiter:
    def __init__(self) -> None:
        self.now = 0.0

    def monotonic_s(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds


class Recorder:
    """Sides, splits and health in one: every move lands in `moves` in order."""

    canary_app = "api-canary"

    def __init__(self, health_at: dict[int, SideHealth] | None = None, *, fail_deploy: bool = False,
                 fail_promote: bool = False, in_force: TrafficSplit | None = None) -> None:
        self.moves: list[str] = []
        self.percent = 0
        self.health_at = health_at or {}
        self.fail_deploy, self.fail_promote, self.in_force = fail_deploy, fail_promote, in_force

    async def begin(self, split: TrafficSplit) -> TrafficSplit | None:
        self.moves.append(f"begin {split.percent}")
        return self.in_force

    async def write(self, split: TrafficSplit) -> None:
        self.percent = split.percent
        self.moves.append(f"split {split.percent}")

    async def clear(self, target: str) -> None:
        self.percent = 0
        self.moves.append("clear")

    async def deploy_canary(self, version: str) -> None:
        self.moves.append(f"deploy {version}")
        if self.fail_deploy:
            raise DeployFailed("replicas never started")

    async def check_canary(self) -> None:
        self.moves.append("check")

    async def promote(self, version: str) -> None:
        self.moves.append(f"promote {version}")
        if self.fail_promote:
            raise DeployFailed("stable app failed")

    async def remove_canary(self) -> None:
        self.moves.append("remove")

    async def health(self, canary_app: str, window_s: float) -> SideHealth:
        found = self.health_at.get(self.percent, SideHealth(100, 0.0, 0.05))
        if isinstance(found, Exception):
            raise found
        return found


PLAN = RolloutPlan(steps=(10, 50, 100), soak_s=30, check_interval_s=5, window_s=60, keep_old_s=60, triggers=TRIGGERS,
                   max_holds=1)


def run(recorder: Recorder, plan: RolloutPlan = PLAN):
    waiter = FakeWaiter()
    rollout = Rollout("api", recorder, recorder, recorder, waiter, plan)
    return asyncio.run(rollout.run("v2")), waiter


def test_a_healthy_canary_grows_step_by_step_then_is_promoted_before_the_split_is_cleared():
    recorder = Recorder()
    report, waiter = run(recorder)
    assert report.outcome is Outcome.PROMOTED and report.reached_percent == 100
    assert recorder.moves == ["begin 0", "deploy v2", "check", "split 10", "split 50", "split 100", "promote v2",
                              "clear", "remove"]
    assert waiter.now == 3 * 30 + 60 + PLAN.drain_s  # three soaks, the keep-old time, the drain before removal
    assert {c.percent for c in report.checks} == {10, 50, 100}


def test_a_trigger_at_50_percent_clears_the_split_before_removing_the_canary_and_never_promotes():
    recorder = Recorder({50: SideHealth(200, 0.05, 0.05)})
    report, _ = run(recorder)
    assert report.outcome is Outcome.ROLLED_BACK and report.reached_percent == 50
    assert "error rate 5.0% > 1.0%" in report.reason and "at 50 %" in report.reason
    assert recorder.moves[-2:] == ["clear", "remove"] and not any(m.startswith("promote") for m in recorder.moves)


def test_a_trigger_while_the_old_side_is_kept_still_rolls_back():
    recorder = Recorder({100: SideHealth(200, 0.0, 0.9)})
    report, _ = run(recorder, RolloutPlan(steps=(100,), soak_s=5, check_interval_s=5, keep_old_s=60,
                                          triggers=TRIGGERS))
    assert report.outcome is Outcome.ROLLED_BACK and "p95 900 ms > 300 ms" in report.reason


def test_a_step_that_never_sees_enough_requests_rolls_back_after_its_holds():
    recorder = Recorder({10: SideHealth(3, 0.0, 0.01)})
    report, waiter = run(recorder)
    assert report.outcome is Outcome.ROLLED_BACK and "3 requests < 20" in report.reason
    assert waiter.now == 2 * 30 + PLAN.drain_s  # the soak, one hold, the drain before removal
    assert recorder.moves[-2:] == ["clear", "remove"]


def test_a_canary_that_cannot_be_deployed_is_removed_and_never_gets_traffic():
    recorder = Recorder(fail_deploy=True)
    report, _ = run(recorder)
    assert report.outcome is Outcome.ROLLED_BACK and "replicas never started" in report.reason
    assert recorder.moves == ["begin 0", "deploy v2", "clear", "remove"]


def test_prometheus_failing_mid_rollout_rolls_back_rather_than_flying_blind():
    recorder = Recorder({50: ConnectionError("prometheus down")})  # type: ignore[dict-item]
    report, _ = run(recorder)
    assert report.outcome is Outcome.ROLLED_BACK and "ConnectionError: prometheus down" in report.reason


def test_a_second_rollout_is_refused_and_touches_nothing():
    recorder = Recorder(in_force=TrafficSplit(target="api", version="v1.9", canary_app="api-canary", percent=50))
    report, _ = run(recorder)
    assert report.outcome is Outcome.REFUSED and "v1.9 is under way at 50 %" in report.reason
    assert recorder.moves == ["begin 0"]


def test_a_failed_promotion_leaves_the_healthy_canary_serving_everyone():
    recorder = Recorder(fail_promote=True)
    report, _ = run(recorder)
    assert report.outcome is Outcome.PROMOTION_FAILED and "--abort" in report.reason
    assert recorder.moves[-1] == "promote v2" and recorder.percent == 100


def test_an_interrupted_rollout_sends_everyone_back_then_stops():
    class Interrupting(Recorder):
        async def health(self, canary_app: str, window_s: float) -> SideHealth:
            raise asyncio.CancelledError

    recorder = Interrupting()
    with pytest.raises(asyncio.CancelledError):
        run(recorder)
    assert recorder.moves[-2:] == ["clear", "remove"]
