"""The consumer's adaptive batching as decisions: small and immediate when caught up, large and lingering
when behind, always within bounds, and settling where the backlog says."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.batch_sizing import BatchSizingRules, BatchTarget, PollObservation, caught_up_target, next_target

RULES = BatchSizingRules(min_messages=500, max_messages=10_000, max_linger_s=0.05, idle_wait_s=0.1)

rules_st = st.builds(
    lambda lo, extra, linger, idle: BatchSizingRules(lo, lo + extra, linger, idle),
    st.integers(1, 5_000), st.integers(0, 20_000), st.floats(0, 1), st.floats(0, 1),
)
targets = st.builds(BatchTarget, st.integers(1, 50_000), st.floats(0, 1), st.floats(0, 1))
observations = st.builds(PollObservation, st.integers(-10, 10**7), st.integers(0, 50_000), st.integers(0, 8))


def test_a_caught_up_consumer_polls_small_batches_without_lingering():
    target = next_target(caught_up_target(RULES), PollObservation(backlog=0, last_polled=120, inflight=0), RULES)
    assert target == BatchTarget(max_messages=500, linger_s=0.0, first_wait_s=0.1)


def test_a_consumer_far_behind_polls_maximal_batches_with_the_full_linger():
    target = next_target(caught_up_target(RULES), PollObservation(backlog=1_000_000, last_polled=500, inflight=2),
                         RULES)
    assert target == BatchTarget(max_messages=10_000, linger_s=0.05, first_wait_s=0.0)


def test_the_batch_takes_what_is_waiting_between_the_bounds():
    target = next_target(caught_up_target(RULES), PollObservation(backlog=2_400, last_polled=0, inflight=1), RULES)
    assert target.max_messages == 2_400 + 500  # room for what arrives meanwhile
    assert 0 < target.linger_s < 0.1 * RULES.max_linger_s  # a few thousand behind: a few ms of linger


def test_an_empty_poll_does_not_block_while_batches_are_in_flight():
    busy = next_target(caught_up_target(RULES), PollObservation(0, 0, inflight=1), RULES)
    idle = next_target(caught_up_target(RULES), PollObservation(0, 0, inflight=0), RULES)
    assert busy.first_wait_s == 0.0 and idle.first_wait_s == RULES.idle_wait_s


def test_a_full_poll_doubles_the_next_batch_although_the_cached_watermark_shows_nothing_left():
    target = caught_up_target(RULES)
    sizes = []
    for _ in range(6):
        target = next_target(target, PollObservation(backlog=0, last_polled=target.max_messages, inflight=1), RULES)
        sizes.append(target.max_messages)
    assert sizes == [1_000, 2_000, 4_000, 8_000, 10_000, 10_000]


def test_fixed_batches_when_the_bounds_are_equal():
    fixed = BatchSizingRules(min_messages=10_000, max_messages=10_000, max_linger_s=0.05)
    target = next_target(caught_up_target(fixed), PollObservation(0, 0, 0), fixed)
    assert (target.max_messages, target.linger_s) == (10_000, 0.05)


@pytest.mark.parametrize(("lo", "hi", "linger"), [(0, 10, 0.0), (11, 10, 0.0), (1, 10, -0.1)])
def test_rules_refuse_impossible_bounds(lo, hi, linger):
    with pytest.raises(ValueError):
        BatchSizingRules(min_messages=lo, max_messages=hi, max_linger_s=linger)


@given(rules_st, targets, observations)
def test_every_target_respects_the_bounds(rules, previous, seen):
    target = next_target(previous, seen, rules)
    assert rules.min_messages <= target.max_messages <= rules.max_messages
    assert 0.0 <= target.linger_s <= rules.max_linger_s
    assert target.first_wait_s in (0.0, rules.idle_wait_s)


@given(rules_st, targets, observations, st.integers(0, 10**6))
def test_more_backlog_never_means_a_smaller_batch_or_a_shorter_linger(rules, previous, seen, more):
    less = next_target(previous, seen, rules)
    bigger = next_target(previous, PollObservation(seen.backlog + more, seen.last_polled, seen.inflight), rules)
    assert bigger.max_messages >= less.max_messages
    assert bigger.linger_s >= less.linger_s


@given(rules_st, st.integers(0, 10**6), st.integers(0, 4))
def test_a_steady_backlog_settles_on_one_target_within_a_few_polls(rules, backlog, inflight):
    """Polls return min(waiting, asked): the target stops moving, at what is waiting plus room."""
    target = caught_up_target(rules)
    history = []
    for _ in range(40):
        target = next_target(target, PollObservation(backlog, min(backlog, target.max_messages), inflight), rules)
        history.append(target)
    assert history[-10:] == [history[-1]] * 10
    assert history[-1].max_messages == min(rules.max_messages, backlog + rules.min_messages)


def test_a_stream_the_pipeline_keeps_up_with_stays_at_small_batches_and_a_burst_grows_then_shrinks_them():
    """A toy consumer polling every 30 ms while 10 readings/ms arrive, with one burst of 200,000."""
    target, waiting, sizes = caught_up_target(RULES), 0, []
    for step in range(200):
        waiting += 10 * 30 + (200_000 if step == 100 else 0)
        target = next_target(target, PollObservation(waiting, sizes[-1] if sizes else 0, inflight=1), RULES)
        taken = min(waiting, target.max_messages)
        waiting -= taken
        sizes.append(taken)
    assert sizes[50:100] == [300] * 50  # steady: everything that waits, in one small batch
    assert sizes[100:120] == [10_000] * 20  # the burst is drained in maximal batches
    assert sizes[-50:] == [300] * 50 and waiting == 0  # and then back to small ones
