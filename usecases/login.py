"""Log in: throttle the (client, username) pair, check the password within the replica's verification cap, and
answer the user — or say why not. The route turns the user into a token; this module decides (docs/SECURITY.md §3).

Order, and why: first a verification slot of this replica (a full verifier refuses at once, and the edge
sheds such logins before they are even parsed); inside it the pair throttle admits the attempt (one Lua script:
check and count together), the user is looked up and the password checked, and the attempt is settled. Taking
the slot first means a pair's attempts reach the throttle one by one per replica, so ten devices logging in as
one user through one proxy all get in, while a burst of guesses still gets only the pair's free failures
checked: the ones behind them find the pair delayed. An unknown username is checked against a dummy hash in
the same slot, so it costs what a known one costs and counts against the cap and the pair alike. An attempt
that was never checked (database down) is settled as abandoned: it frees its place and counts as no failure.
"""

from __future__ import annotations

from dataclasses import dataclass

from usecases.ports.clock import Clock
from usecases.ports.login import Credentials, LoginRow, LoginThrottle, Outcome, PasswordCheck, VerifierBusy


class TooManyAttempts(Exception):
    """429: this pair must wait (`retry_after_s`), or the replica's verification slots are all taken."""

    def __init__(self, retry_after_s: int, message: str) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class BadCredentials(Exception):
    """401: an unknown username or a wrong password (one answer for both)."""


class AccountDisabled(Exception):
    """403: the right password for a disabled login."""


@dataclass(frozen=True, slots=True)
class LoginAttempt:
    username: str
    password: str
    client: str  # the caller's address as the API sees it (deployments.api.client_address)


@dataclass(frozen=True, slots=True)
class LoginPorts:
    throttle: LoginThrottle
    credentials: Credentials
    passwords: PasswordCheck
    clock: Clock


async def log_in(attempt: LoginAttempt, ports: LoginPorts) -> LoginRow:
    """The user behind a right password, with `last_login_at` recorded; raises TooManyAttempts, BadCredentials
    or AccountDisabled. Backend errors propagate (the API answers 503) after the attempt is settled."""
    try:
        async with ports.passwords.slot():
            admission = await ports.throttle.admit(attempt.client, attempt.username, ports.clock.now_ms())
            if not admission.allowed:
                raise TooManyAttempts(admission.retry_after_s,
                                      f"too many failed logins; try again in {admission.retry_after_s} s")
            outcome, row = Outcome.ABANDONED, None
            try:
                row = await ports.credentials.login_row(attempt.username)
                matches = await ports.passwords.verify(row.password_hash if row else None, attempt.password)
                outcome = Outcome.SUCCEEDED if matches and row is not None else Outcome.FAILED
            finally:
                await ports.throttle.settle(attempt.client, attempt.username, admission.ticket, outcome,
                                            ports.clock.now_ms())
    except VerifierBusy as busy:
        raise TooManyAttempts(busy.retry_after_s, str(busy)) from None
    if outcome is not Outcome.SUCCEEDED or row is None:
        raise BadCredentials("invalid username or password")
    if not row.is_active:
        raise AccountDisabled("account disabled: ask an administrator")
    await ports.credentials.record_login(row.user_id)
    return row
