"""InMemoryFairnessReader: the FairnessReader fake, over scored drivers and trips a test hands it (the trips in
the order the scorer reads them). Windows are (from_ms, to_ms] on a trip's end, like the PostgreSQL statement."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from domain.trip_summary import TripSummary
from usecases.ports.fairness import ScoredDriver
from usecases.ports.score_store import TripSpan


class InMemoryFairnessReader:
    def __init__(self, drivers: Sequence[ScoredDriver] = (),
                 trips: dict[str, list[TripSummary]] | None = None) -> None:
        self.drivers = list(drivers)
        self.trip_rows = dict(trips or {})
        self.trip_calls = 0

    async def scored_drivers(self, since: datetime) -> list[ScoredDriver]:
        cutoff_ms = since.timestamp() * 1000
        return sorted((d for d in self.drivers if d.scored_at_ms >= cutoff_ms), key=lambda d: d.driver_id)

    async def trips(self, spans: Sequence[TripSpan]) -> dict[str, list[TripSummary]]:
        self.trip_calls += 1
        return {s.driver_id: [t for t in self.trip_rows.get(s.driver_id, []) if s.from_ms < t.end_ms <= s.to_ms]
                for s in spans}
