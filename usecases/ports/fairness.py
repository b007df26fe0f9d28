"""FairnessReader: what fairness and drift read (docs/SCORING.md "Fairness, drift, calibration").

Real adapter: storage/postgres/fairness_queries.py (one connection); fake: storage/memory/fairness.py. The
training side comes from the model artifact (`ReferenceLoader`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Protocol

from domain.fairness import ReferenceBins
from domain.trip_summary import TripSummary
from usecases.ports.score_store import TripSpan


@dataclass(frozen=True, slots=True)
class ScoredDriver:
    """A driver scored in the window: their latest score (at `scored_at_ms`, the end of the trip that triggered it,
    device time) with the `feature_hash` the model recorded, the cohort inputs, the active policy's premium and
    vehicle use (None without an active policy) and their claims of the window that were not rejected."""

    driver_id: str
    scored_at_ms: int
    model_version: str
    feature_hash: str
    score: float
    rate: float | None
    date_of_birth: date | None
    timezone: str | None
    premium: float | None
    vehicle_use: str | None
    claims: int


@dataclass(frozen=True, slots=True)
class ModelReference:
    """The artifact the inputs are compared with: its version and its inputs' training bins; `inputs` None with a
    `note` saying why (an artifact trained before they were kept, one missing or failing verification)."""

    model_version: str | None
    inputs: tuple[ReferenceBins, ...] | None
    note: str | None = None


# model version → its reference; never raises (what went wrong is the note). storage/files/model_artifacts.py.
ReferenceLoader = Callable[[str], Awaitable[ModelReference]]


class FairnessReader(Protocol):
    async def scored_drivers(self, since: datetime) -> list[ScoredDriver]:
        """Every driver with a score at or after `since`, by driver id; one statement for any number."""
        ...

    async def trips(self, spans: Sequence[TripSpan]) -> dict[str, list[TripSummary]]:
        """The trips of each span (one per driver) in the order the scorer reads them (start, then trip id)."""
        ...
