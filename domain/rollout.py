"""Staged rollout: who goes to the new side, and whether the new side is healthy enough to grow. Pure.

A rollout moves a share of traffic (`percent`) from the stable side to a canary in steps (10 → 50 → 100 by
default). Clients are assigned by a stable hash of who they are (their credential, else their address), so a
client stays on one side for a whole step and the share only ever grows: a client on the canary at 10 % is still
on it at 50 %. Between steps the canary's error rate and p95, read from Prometheus, decide: grow, hold (too few
requests to judge yet), or roll back (plan §12's triggers: error rate > 1 %, p95 > 300 ms).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import StrEnum

import msgspec

TARGETS = ("api", "model")
DEFAULT_STEPS = (10, 50, 100)


class SplitError(ValueError):
    """Steps or a split that cannot be followed (the CLI prints it)."""


def parse_steps(text: str) -> tuple[int, ...]:
    """"10,50,100" → (10, 50, 100): strictly increasing percentages in 1..100 that end at 100."""
    try:
        steps = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise SplitError(f"steps {text!r}: expected comma-separated whole percentages such as 10,50,100") from None
    if not steps or steps[-1] != 100 or any(not 0 < s <= 100 for s in steps) or list(steps) != sorted(set(steps)):
        raise SplitError(f"steps {text!r}: percentages must increase strictly within 1..100 and end at 100")
    return steps


def canary_bucket(client_key: str) -> int:
    """0..99, the same for the same client on every replica and every run (not Python's salted hash)."""
    digest = hashlib.blake2b(client_key.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % 100


def goes_to_canary(client_key: str, percent: int) -> bool:
    return percent > 0 and canary_bucket(client_key) < percent


class TrafficSplit(msgspec.Struct, frozen=True, kw_only=True):
    """What every replica reads: the share of clients sent to `canary_app` (serving build `version`)."""

    target: str
    version: str
    canary_app: str
    percent: int = 0

    def encode(self) -> bytes:
        return msgspec.json.encode(self)

    @classmethod
    def decode(cls, data: bytes | str | None) -> TrafficSplit | None:
        """None for no key or a value this build cannot read: no canary traffic, the safe side."""
        if not data:
            return None
        try:
            split = msgspec.json.decode(data, type=cls)
        except msgspec.DecodeError:
            return None
        return split if 0 <= split.percent <= 100 else None


@dataclass(frozen=True, slots=True)
class Triggers:
    """Plan §12's rollback triggers for the new side, and how much evidence a verdict needs."""

    max_error_rate: float = 0.01
    max_p95_s: float = 0.300
    min_requests: int = 20


@dataclass(frozen=True, slots=True)
class SideHealth:
    """The canary over the judging window: requests answered, the share that were 5xx, and p95 (None: no data)."""

    requests: float
    error_rate: float | None
    p95_s: float | None


class Verdict(StrEnum):
    HEALTHY = "healthy"
    TOO_FEW_REQUESTS = "too_few_requests"
    ROLL_BACK = "roll_back"


def judge(health: SideHealth, triggers: Triggers) -> tuple[Verdict, str]:
    """A failing trigger rolls back even on few requests (a handful of 5xx out of a handful is a broken build);
    only a clean side needs `min_requests` before it may grow."""
    if health.error_rate is not None and health.error_rate > triggers.max_error_rate and health.requests > 0:
        return Verdict.ROLL_BACK, (f"error rate {health.error_rate:.1%} > {triggers.max_error_rate:.1%} "
                                   f"over {health.requests:.0f} requests")
    if health.requests >= triggers.min_requests and health.p95_s is not None and health.p95_s > triggers.max_p95_s:
        return Verdict.ROLL_BACK, f"p95 {health.p95_s * 1000:.0f} ms > {triggers.max_p95_s * 1000:.0f} ms"
    if health.requests < triggers.min_requests:
        return Verdict.TOO_FEW_REQUESTS, f"{health.requests:.0f} requests < {triggers.min_requests} to judge"
    p95 = "no p95" if health.p95_s is None else f"p95 {health.p95_s * 1000:.0f} ms"
    return Verdict.HEALTHY, f"error rate {(health.error_rate or 0):.2%}, {p95} over {health.requests:.0f} requests"
