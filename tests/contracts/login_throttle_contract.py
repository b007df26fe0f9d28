"""The LoginThrottle contract (usecases.ports.login): run on InMemoryLoginThrottle in the unit suite and on
storage.redis.login_throttle.RedisLoginThrottle in the integration suite. Times are passed in (epoch ms), so
every check is deterministic; each uses a fresh username. `RULES` is what both are built with."""

from __future__ import annotations

import uuid

from usecases.ports.login import LoginThrottle, Outcome, ThrottleRules

RULES = ThrottleRules(free_failures=3, first_delay_ms=2_000, max_delay_ms=16_000, window_ms=60_000, lease_ms=30_000)
T0 = 1_750_000_000_000
CLIENT, OTHER_CLIENT = "10.0.0.1", "10.0.0.2"


def _user() -> str:
    return f"contract-{uuid.uuid4().hex[:10]}"


async def _fail(throttle: LoginThrottle, user: str, now_ms: int, client: str = CLIENT) -> None:
    admission = await throttle.admit(client, user, now_ms)
    assert admission.allowed, admission
    await throttle.settle(client, user, admission.ticket, Outcome.FAILED, now_ms)


async def a_fresh_pair_is_admitted(throttle: LoginThrottle) -> None:
    admission = await throttle.admit(CLIENT, _user(), T0)
    assert admission.allowed and admission.ticket


async def free_failures_pass_then_each_attempt_waits_twice_as_long_up_to_the_cap(throttle: LoginThrottle) -> None:
    user, now = _user(), T0
    for _ in range(RULES.free_failures):
        await _fail(throttle, user, now)
    waits = []
    for _ in range(5):
        held = await throttle.admit(CLIENT, user, now)
        assert not held.allowed
        waits.append(held.retry_after_ms)
        now += held.retry_after_ms
        await _fail(throttle, user, now)
    assert waits == [2_000, 4_000, 8_000, 16_000, 16_000]
    almost = await throttle.admit(CLIENT, user, now + 15_999)
    assert not almost.allowed and almost.retry_after_ms == 1 and almost.retry_after_s == 1


async def the_right_password_clears_the_pair(throttle: LoginThrottle) -> None:
    user = _user()
    for _ in range(RULES.free_failures):
        await _fail(throttle, user, T0)
    admission = await throttle.admit(CLIENT, user, T0 + 2_000)
    await throttle.settle(CLIENT, user, admission.ticket, Outcome.SUCCEEDED, T0 + 2_000)
    for _ in range(RULES.free_failures):  # the free failures are back
        await _fail(throttle, user, T0 + 2_000)


async def a_held_pair_never_holds_the_same_user_from_another_address(throttle: LoginThrottle) -> None:
    user = _user()
    for _ in range(RULES.free_failures + 2):
        admission = await throttle.admit(CLIENT, user, T0)
        if admission.allowed:
            await throttle.settle(CLIENT, user, admission.ticket, Outcome.FAILED, T0)
    assert not (await throttle.admit(CLIENT, user, T0)).allowed
    assert (await throttle.admit(OTHER_CLIENT, user, T0)).allowed


async def usernames_count_case_insensitively(throttle: LoginThrottle) -> None:
    user = _user()
    for variant in (user.upper(), user.title(), user):  # RULES.free_failures == 3
        await _fail(throttle, variant, T0)
    assert not (await throttle.admit(CLIENT, user.upper(), T0)).allowed


async def a_burst_in_flight_is_bounded_by_the_free_failures_left(throttle: LoginThrottle) -> None:
    user = _user()
    await _fail(throttle, user, T0)
    burst = [await throttle.admit(CLIENT, user, T0) for _ in range(RULES.free_failures + 3)]
    assert [a.allowed for a in burst] == [True] * (RULES.free_failures - 1) + [False] * 4
    assert burst[-1].retry_after_ms == 1_000
    await throttle.settle(CLIENT, user, burst[0].ticket, Outcome.SUCCEEDED, T0)  # frees one place
    assert (await throttle.admit(CLIENT, user, T0)).allowed


async def once_held_a_pair_has_one_attempt_in_flight_at_a_time(throttle: LoginThrottle) -> None:
    user = _user()
    for _ in range(RULES.free_failures):
        await _fail(throttle, user, T0)
    first = await throttle.admit(CLIENT, user, T0 + 2_000)
    second = await throttle.admit(CLIENT, user, T0 + 2_000)
    assert first.allowed and not second.allowed


async def an_abandoned_attempt_counts_nothing(throttle: LoginThrottle) -> None:
    user = _user()
    for _ in range(RULES.free_failures + 3):
        admission = await throttle.admit(CLIENT, user, T0)
        assert admission.allowed
        await throttle.settle(CLIENT, user, admission.ticket, Outcome.ABANDONED, T0)


async def an_attempt_that_never_settles_stops_counting_after_its_lease(throttle: LoginThrottle) -> None:
    user = _user()
    for _ in range(RULES.free_failures):
        assert (await throttle.admit(CLIENT, user, T0)).allowed  # the replica died before settling
    assert not (await throttle.admit(CLIENT, user, T0 + RULES.lease_ms - 1)).allowed
    assert (await throttle.admit(CLIENT, user, T0 + RULES.lease_ms)).allowed


async def failures_are_forgotten_a_window_after_the_last_delay(throttle: LoginThrottle) -> None:
    user = _user()
    for _ in range(RULES.free_failures):
        await _fail(throttle, user, T0)
    later = T0 + 2_000 + RULES.window_ms
    for _ in range(RULES.free_failures):  # a fresh record: every free failure again, no delay
        await _fail(throttle, user, later)


CONTRACT = [a_fresh_pair_is_admitted, free_failures_pass_then_each_attempt_waits_twice_as_long_up_to_the_cap,
          the_right_password_clears_the_pair, a_held_pair_never_holds_the_same_user_from_another_address,
          usernames_count_case_insensitively, a_burst_in_flight_is_bounded_by_the_free_failures_left,
          once_held_a_pair_has_one_attempt_in_flight_at_a_time, an_abandoned_attempt_counts_nothing,
          an_attempt_that_never_settles_stops_counting_after_its_lease,
          failures_are_forgotten_a_window_after_the_last_delay]
