"""What both score stores decide alike (PostgresScoreStore and the InMemoryScoreStore fake), as pure checks,
so the real store and the fake cannot drift apart (the same idea as storage/event_store_contract.py)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from decimal import Decimal

from domain.events import PremiumQuoted
from domain.scoring import ScoringOutcome


def check_trip_order(outcomes: Sequence[ScoringOutcome]) -> None:
    """Each driver's outcomes must come in trip order, each trip once: the premium chain depends on it."""
    last: dict[str, tuple[int, uuid.UUID]] = {}
    for o in outcomes:
        key = (o.risk_scored.occurred_at_ms, o.risk_scored.trip_id)
        held = last.get(o.risk_scored.driver_id)
        if held is not None and key <= held:
            raise ValueError(f"outcomes of {o.risk_scored.driver_id} are not in trip order")
        last[o.risk_scored.driver_id] = key


def first_per_policy(quotes: Sequence[PremiumQuoted]) -> list[PremiumQuoted]:
    """Each policy's first quote of a write: it started from the policy as stored, so staleness is checked
    against it (the later ones start from the quote before them)."""
    first: dict[uuid.UUID, PremiumQuoted] = {}
    for q in quotes:
        first.setdefault(q.policy_id, q)
    return list(first.values())


def last_per_policy(quotes: Sequence[PremiumQuoted]) -> list[PremiumQuoted]:
    """Each policy's last quote of a write: the premium it ends at (UPDATE … FROM unnest moves a row once)."""
    return list({q.policy_id: q for q in quotes}.values())


def is_stale(quote: PremiumQuoted, status: str | None, current_premium: Decimal | None) -> bool:
    """The policy (None: gone) is no longer active at the premium the quote started from."""
    if status != "active" or current_premium is None:
        return True
    held = None if current_premium <= 0 else current_premium
    return held != quote.previous_premium
