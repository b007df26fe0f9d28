"""InMemoryLoginThrottle: the LoginThrottle port in a dict, for unit tests. The same contract suite
(tests/contracts/login_throttle_contract.py) runs on it and on storage.redis.login_throttle.RedisLoginThrottle."""

from __future__ import annotations

from dataclasses import dataclass, field

from usecases.ports.login import Admission, Outcome, ThrottleRules


@dataclass
class _Pair:
    failures: int = 0
    next_at_ms: int = 0
    expires_at_ms: int = 0
    in_flight: dict[str, int] = field(default_factory=dict)  # ticket → lease end


class InMemoryLoginThrottle:
    def __init__(self, rules: ThrottleRules) -> None:
        self.rules = rules
        self._pairs: dict[tuple[str, str], _Pair] = {}

    def _pair(self, client: str, username: str, now_ms: int) -> _Pair:
        pair = self._pairs.setdefault((client, username.lower()), _Pair())
        if pair.expires_at_ms <= now_ms:  # Redis: the record's TTL ran out (in-flight leases expire on their own)
            pair.failures, pair.next_at_ms = 0, 0
        pair.in_flight = {t: end for t, end in pair.in_flight.items() if end > now_ms}
        return pair

    async def admit(self, client: str, username: str, now_ms: int) -> Admission:
        pair = self._pair(client, username, now_ms)
        if now_ms < pair.next_at_ms:
            return Admission(False, pair.next_at_ms - now_ms)
        if len(pair.in_flight) >= self.rules.in_flight_budget(pair.failures):
            return Admission(False, 1000)
        ticket = Admission.new_ticket()
        pair.in_flight[ticket] = now_ms + self.rules.lease_ms
        return Admission(True, 0, ticket)

    async def settle(self, client: str, username: str, ticket: str, outcome: Outcome, now_ms: int) -> None:
        pair = self._pair(client, username, now_ms)
        pair.in_flight.pop(ticket, None)
        if outcome is Outcome.SUCCEEDED:
            pair.failures, pair.next_at_ms, pair.expires_at_ms = 0, 0, 0
        elif outcome is Outcome.FAILED:
            pair.failures += 1
            delay_ms = self.rules.delay_ms(pair.failures)
            pair.next_at_ms = now_ms + delay_ms
            pair.expires_at_ms = now_ms + delay_ms + self.rules.window_ms
