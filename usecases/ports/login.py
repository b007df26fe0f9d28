"""The ports of a login (usecases.login): who the user is, how a password is checked, and how attempts are throttled.

`LoginThrottle` counts attempts per (client address, username) — a *pair* — atomically: `admit` checks and records
an attempt in flight in one step (so a burst of concurrent guesses cannot all pass before the first failure is
counted), `settle` records how it ended. The rules (`ThrottleRules`): a pair may fail `free_failures` times; after
that each further attempt must wait 2^k seconds (k = failures − free_failures + 1, capped at `max_delay_ms`) after
the last failure, one at a time. Success clears the pair. Nothing is held per username alone, so a stranger's
failures never hold the victim's own address (docs/SECURITY.md §3).
"""

from __future__ import annotations

import uuid
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol


class Outcome(StrEnum):
    SUCCEEDED = "ok"  # the right password: the pair starts afresh
    FAILED = "fail"  # a wrong password or an unknown user: counts
    ABANDONED = "abandon"  # never checked (verifier busy, database down): frees the slot, counts nothing


@dataclass(frozen=True, slots=True)
class ThrottleRules:
    """Thresholds of the pair throttle (settings: login_max_failures, login_delay_max_s, login_failure_window_s)."""

    free_failures: int = 5
    first_delay_ms: int = 2_000  # 2^1 s after the free failures, then doubling
    max_delay_ms: int = 300_000
    window_ms: int = 300_000  # a pair's record expires this long after its last failure's delay ends
    lease_ms: int = 30_000  # an attempt in flight that never settles (replica died) stops counting after this

    def delay_ms(self, failures: int) -> int:
        """The wait after the `failures`-th failure: 0 while free, then 2, 4, 8 … s up to `max_delay_ms`."""
        if failures < self.free_failures:
            return 0
        doublings = min(failures - self.free_failures, 40)
        return min(self.first_delay_ms * 2**doublings, self.max_delay_ms)

    def in_flight_budget(self, failures: int) -> int:
        """Attempts a pair may have in flight at once: its remaining free failures, then one at a time."""
        return max(self.free_failures - failures, 1)


@dataclass(frozen=True, slots=True)
class Admission:
    allowed: bool
    retry_after_ms: int = 0
    ticket: str = ""  # names the attempt in flight; pass it to `settle`

    @staticmethod
    def new_ticket() -> str:
        return uuid.uuid4().hex

    @property
    def retry_after_s(self) -> int:
        return max(1, -(-self.retry_after_ms // 1000))


class LoginThrottle(Protocol):
    async def admit(self, client: str, username: str, now_ms: int) -> Admission: ...

    async def settle(self, client: str, username: str, ticket: str, outcome: Outcome, now_ms: int) -> None: ...


@dataclass(frozen=True, slots=True)
class LoginRow:
    user_id: str
    role: str
    driver_id: str | None
    is_active: bool
    password_hash: str
    token_version: int = 0  # minted into the token (`ver`): revoked when it moves (docs/SECURITY.md §8)


class Credentials(Protocol):
    async def login_row(self, username: str) -> LoginRow | None: ...

    async def record_login(self, user_id: str) -> None: ...


class VerifierBusy(Exception):
    """Every password-verification slot of this replica is taken and the queue is full: answer 429."""

    def __init__(self, retry_after_s: int = 1) -> None:
        super().__init__("too many logins are being checked right now; retry shortly")
        self.retry_after_s = retry_after_s


class PasswordCheck(Protocol):
    def slot(self) -> AbstractAsyncContextManager[None]:
        """Hold one of the replica's verification slots (raises VerifierBusy when none frees up in time)."""
        ...

    async def verify(self, password_hash: str | None, password: str) -> bool:
        """True iff it matches; None (unknown user) costs the same as a wrong password and is False."""
        ...

