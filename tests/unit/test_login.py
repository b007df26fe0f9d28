"""usecases.login.log_in over fakes (the in-memory pair throttle, credentials in a dict, a fake password check), the
per-replica verification cap (deployments.api.passwords) and the client address (deployments.api.client_address)."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from contextlib import asynccontextmanager

import pytest

from deployments.api.client_address import client_address
from deployments.api.passwords import PasswordVerifier
from storage.memory.login_throttle import InMemoryLoginThrottle
from usecases.login import AccountDisabled, BadCredentials, LoginAttempt, LoginPorts, TooManyAttempts, log_in
from usecases.ports.clock import FakeClock
from usecases.ports.login import LoginRow, ThrottleRules, VerifierBusy

RULES = ThrottleRules(free_failures=3)
VICTIM = LoginRow(user_id="u-admin", role="admin", driver_id=None, is_active=True, password_hash="hash:right")
DISABLED = LoginRow(user_id="u-old", role="driver", driver_id="d1", is_active=False, password_hash="hash:old")
ATTACKER, VICTIMS_OWN = "203.0.113.9", "198.51.100.7"


class FakeCredentials:
    def __init__(self, *rows: tuple[str, LoginRow], down: bool = False) -> None:
        self.rows = dict(rows)
        self.recorded: list[str] = []
        self.down = down

    async def login_row(self, username: str) -> LoginRow | None:
        if self.down:
            raise ConnectionError("database down")
        return self.rows.get(username)

    async def record_login(self, user_id: str) -> None:
        self.recorded.append(user_id)


class FakePasswords:
    """`hash:<password>` matches <password>; one slot at a time, like the real verifier's default; counts checks."""

    def __init__(self, busy: bool = False) -> None:
        self.busy = busy
        self.inside = 0
        self.checked: list[str | None] = []
        self._one = asyncio.Semaphore(1)

    @asynccontextmanager
    async def slot(self):
        if self.busy:
            raise VerifierBusy(1)
        async with self._one:
            self.inside += 1
            try:
                yield
            finally:
                self.inside -= 1

    async def verify(self, password_hash: str | None, password: str) -> bool:
        assert self.inside == 1, "a password is checked only inside a slot"
        self.checked.append(password_hash)
        await asyncio.sleep(0)  # the real check runs in a thread: others get to run meanwhile
        return password_hash == f"hash:{password}"


def _ports(credentials=None, passwords=None) -> LoginPorts:
    return LoginPorts(InMemoryLoginThrottle(RULES), credentials or FakeCredentials(("admin", VICTIM),
                                                                                  ("old", DISABLED)),
                      passwords or FakePasswords(), FakeClock())


def _run(coro):
    return asyncio.run(coro)


def test_the_right_password_answers_the_user_and_records_the_login():
    ports = _ports()
    assert _run(log_in(LoginAttempt("admin", "right", VICTIMS_OWN), ports)) == VICTIM
    assert ports.credentials.recorded == ["u-admin"]


def test_an_unknown_user_is_checked_like_a_known_one_and_gets_the_same_answer():
    ports = _ports()
    for username in ("admin", "nobody"):
        with pytest.raises(BadCredentials, match="invalid username or password"):
            _run(log_in(LoginAttempt(username, "wrong", ATTACKER), ports))
    assert ports.passwords.checked == ["hash:right", None]  # None: the dummy hash, same cost, same slot


def test_a_strangers_failures_delay_only_their_own_address_never_the_victims():
    ports = _ports()

    async def scenario():
        for _ in range(RULES.free_failures):
            with pytest.raises(BadCredentials):
                await log_in(LoginAttempt("admin", "guess", ATTACKER), ports)
        with pytest.raises(TooManyAttempts) as held:  # even the right password, from the attacker's address
            await log_in(LoginAttempt("admin", "right", ATTACKER), ports)
        assert held.value.retry_after_s == 2
        return await log_in(LoginAttempt("admin", "right", VICTIMS_OWN), ports)

    assert _run(scenario()) == VICTIM


def test_each_further_failure_doubles_the_wait():
    ports = _ports()

    async def scenario() -> list[int]:
        waits = []
        for _ in range(RULES.free_failures):
            with pytest.raises(BadCredentials):
                await log_in(LoginAttempt("admin", "guess", ATTACKER), ports)
        for _ in range(4):
            with pytest.raises(TooManyAttempts) as held:
                await log_in(LoginAttempt("admin", "guess", ATTACKER), ports)
            waits.append(held.value.retry_after_s)
            ports.clock.advance(held.value.retry_after_s)
            with pytest.raises(BadCredentials):
                await log_in(LoginAttempt("admin", "guess", ATTACKER), ports)
        return waits

    assert _run(scenario()) == [2, 4, 8, 16]


def _outcomes(results: list) -> list[str]:
    return sorted(type(r).__name__ for r in results)


def test_a_burst_of_guesses_gets_only_the_free_failures_checked():
    ports = _ports()

    async def scenario() -> list:
        return await asyncio.gather(*(log_in(LoginAttempt("admin", f"guess{i}", ATTACKER), ports)
                                      for i in range(10)), return_exceptions=True)

    assert _outcomes(_run(scenario())) == ["BadCredentials"] * RULES.free_failures + ["TooManyAttempts"] * 7
    assert len(ports.passwords.checked) == RULES.free_failures


def test_many_devices_of_one_user_behind_one_address_all_get_in():
    ports = _ports()

    async def scenario() -> list:
        return await asyncio.gather(*(log_in(LoginAttempt("admin", "right", ATTACKER), ports) for _ in range(10)))

    assert _run(scenario()) == [VICTIM] * 10


def test_a_busy_verifier_is_429_and_counts_no_failure():
    ports = _ports(passwords=FakePasswords(busy=True))
    for _ in range(RULES.free_failures + 3):
        with pytest.raises(TooManyAttempts, match="being checked") as refused:
            _run(log_in(LoginAttempt("admin", "right", ATTACKER), ports))
        assert refused.value.retry_after_s == 1
    ports.passwords.busy = False
    assert _run(log_in(LoginAttempt("admin", "right", ATTACKER), ports)) == VICTIM


def test_a_database_outage_propagates_and_counts_no_failure():
    ports = _ports(credentials=FakeCredentials(down=True))
    for _ in range(RULES.free_failures + 1):
        with pytest.raises(ConnectionError):
            _run(log_in(LoginAttempt("admin", "right", ATTACKER), ports))
    ports.credentials.down, ports.credentials.rows = False, {"admin": VICTIM}
    assert _run(log_in(LoginAttempt("admin", "right", ATTACKER), ports)) == VICTIM


def test_a_disabled_login_is_refused_only_after_its_right_password():
    ports = _ports()
    with pytest.raises(BadCredentials):
        _run(log_in(LoginAttempt("old", "wrong", ATTACKER), ports))
    with pytest.raises(AccountDisabled):
        _run(log_in(LoginAttempt("old", "old", ATTACKER), ports))
    assert ports.credentials.recorded == []


# -- the verification cap --------------------------------------------------------------------------


def test_the_cap_runs_so_many_at_once_queues_so_many_more_and_refuses_the_rest_at_once():
    async def scenario() -> tuple[int, list[str]]:
        verifier = PasswordVerifier(concurrency=2, queue=3, wait_s=5)
        release = asyncio.Event()
        inside = peak = 0
        results: list[str] = []

        async def attempt() -> None:
            nonlocal inside, peak
            try:
                async with verifier.slot():
                    inside += 1
                    peak = max(peak, inside)
                    await release.wait()
                    inside -= 1
                results.append("ran")
            except VerifierBusy:
                results.append("busy")

        tasks = [asyncio.create_task(attempt()) for _ in range(8)]
        await asyncio.sleep(0.05)
        assert results == ["busy"] * 3 and verifier.waiting == 3  # 2 inside, 3 waiting, 3 refused at once
        assert not verifier.has_room()
        release.set()
        await asyncio.gather(*tasks)
        return peak, results

    peak, results = _run(scenario())
    assert peak == 2 and results.count("ran") == 5 and results.count("busy") == 3


def test_waiting_longer_than_the_wait_is_refused():
    async def scenario() -> None:
        verifier = PasswordVerifier(concurrency=1, queue=5, wait_s=0.05)
        async with verifier.slot():
            with pytest.raises(VerifierBusy):
                async with verifier.slot():
                    pass
        async with verifier.slot():  # the slot is free again and nothing leaked
            assert verifier.waiting == 0

    _run(scenario())


def test_passwords_are_verified_on_idle_priority_threads():
    async def scenario() -> tuple[int, int]:
        verifier = PasswordVerifier(concurrency=1, queue=1, wait_s=5)
        try:
            async with verifier.slot():
                assert await verifier.verify(None, "x") is False
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(verifier._executor, lambda: (
                os.sched_getscheduler(threading.get_native_id()),
                os.getpriority(os.PRIO_PROCESS, threading.get_native_id())))
        finally:
            verifier.close()

    policy, nice = _run(scenario())
    assert policy == os.SCHED_IDLE or nice == 19
    assert os.sched_getscheduler(threading.get_native_id()) != os.SCHED_IDLE  # the caller's thread is untouched


# -- the client address ----------------------------------------------------------------------------


def _scope(peer: str, *forwarded: str) -> dict:
    return {"client": (peer, 5000), "headers": [(b"x-forwarded-for", f.encode()) for f in forwarded]}


@pytest.mark.parametrize(
    ("scope", "hops", "address"),
    [
        (_scope("10.0.0.1", "6.6.6.6"), 0, "10.0.0.1"),  # by default the header is the client's text: ignored
        (_scope("10.0.0.1", "6.6.6.6, 203.0.113.5"), 1, "203.0.113.5"),
        (_scope("10.0.0.1", "6.6.6.6", "203.0.113.5, 10.0.0.9"), 2, "203.0.113.5"),
        (_scope("10.0.0.1"), 1, "10.0.0.1"),  # did not come through the trusted proxy
        ({"headers": []}, 0, "unknown"),
    ],
)
def test_the_client_address_trusts_only_as_many_forwarded_hops_as_configured(scope, hops, address):
    assert client_address(scope, hops) == address


def test_a_verifier_below_full_duty_rests_after_each_check_while_holding_its_slot():
    async def timed(duty: float) -> float:
        verifier = PasswordVerifier(concurrency=1, queue=1, wait_s=5, duty=duty)
        try:
            await verifier.verify(None, "warm-up")
            started = time.perf_counter()
            async with verifier.slot():
                await verifier.verify(None, "x")
            return time.perf_counter() - started
        finally:
            verifier.close()

    full, quarter = _run(timed(1.0)), _run(timed(0.25))
    assert quarter >= 3 * full * 0.8, (full, quarter)  # check + rest of 3 × the check
