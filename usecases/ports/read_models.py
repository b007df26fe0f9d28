"""DriverReadModels: what the driver queries read (profile, trips, scores, policies, the quote's inputs).

Rows cross the port as plain mappings of column name → Python value (datetime, Decimal, UUID…), shaped by
the handlers. Every method is a constant number of statements in the real adapter (no N+1) and answers
"unknown driver" distinctly from "known, nothing yet" so the API can say 404 vs an empty page.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from domain.events import PremiumQuoted
from domain.scoring import PolicyTerms
from domain.trip_summary import TripSummary

Row = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class RowsPage:
    """One page of rows, newest first: `known` says whether the driver exists; `total` counts all pages."""

    known: bool
    total: int
    rows: Sequence[Row]


@dataclass(frozen=True, slots=True)
class QuoteBasis:
    """What a quote needs besides the score: the active policy (storage.postgres.policies' rule), the latest
    `premium_quoted` of the driver's risk stream, and the end (device time, epoch ms) of their latest trip."""

    policy: PolicyTerms | None
    stored_quote: PremiumQuoted | None
    latest_trip_end_ms: int | None


class DriverReadModels(Protocol):
    async def profile(self, driver_id: str) -> Row | None: ...

    async def trips_page(self, driver_id: str, limit: int, offset: int) -> RowsPage: ...

    async def trip(self, trip_id: uuid.UUID) -> Row | None: ...

    async def latest_score(self, driver_id: str) -> tuple[bool, Row | None]:
        """(driver exists, the newest score row: scored_at, then recorded order, or None before any)."""
        ...

    async def score_history(self, driver_id: str, limit: int, offset: int) -> RowsPage: ...

    async def policies(self, driver_id: str) -> tuple[bool, Sequence[Row]]:
        """(driver exists, their policies: the active one first, then newest effective date)."""
        ...

    async def quote_basis(self, driver_id: str) -> QuoteBasis: ...

    async def window_trips(self, driver_id: str, from_ms: int, to_ms: int) -> list[TripSummary]:
        """The driver's trips that ended in (from_ms, to_ms] (device time), in start order: the scorer's window."""
        ...

    async def recently_active(self, since: datetime, limit: int) -> list[str]:
        """Drivers with a trip ending after `since`, newest first (cache warming)."""
        ...
