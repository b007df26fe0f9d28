"""DriverReadModels: what the driver queries read (profile, trips, a trip's episodes and readings, scores, policies,
the quote's inputs).

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

from domain.events import DisputeRescored, PremiumQuoted
from domain.scoring import PolicyTerms
from domain.trip_summary import TripSummary

Row = Mapping[str, Any]
MaybePosition = tuple[float | None, float | None]  # (lat, lon) of a reading; None where the device sent none


@dataclass(frozen=True, slots=True)
class RowsPage:
    """One page of rows, newest first: `known` says whether the driver exists; `total` counts all pages."""

    known: bool
    total: int
    rows: Sequence[Row]


@dataclass(frozen=True, slots=True)
class QuoteBasis:
    """What a quote needs besides the score: the active policy (storage.postgres.policies' rule), the latest
    `premium_quoted` (or an accepted dispute's `dispute_rescored` with a premium) of the driver's risk stream, and
    the end (device time, epoch ms) of their latest trip."""

    policy: PolicyTerms | None
    stored_quote: PremiumQuoted | DisputeRescored | None
    latest_trip_end_ms: int | None


@dataclass(frozen=True, slots=True)
class TripBounds:
    """A trip's owner and span (device time, as `trips` stores it)."""

    trip_id: uuid.UUID
    driver_id: str
    start_time: datetime
    end_time: datetime


@dataclass(frozen=True, slots=True)
class StoredEpisode:
    """A detector's event of a trip as stored (its JSON payload, `domain.trip_episodes.EPISODE_TAGS`) and, when the
    event carries no position, (lat, lon) of the driver's reading at the episode's start (None if there is none)."""

    payload_json: str
    start_position: tuple[float, float] | None


@dataclass(frozen=True, slots=True)
class EpisodesPage:
    """One page of a trip's episodes in time order; `driver_id` owns the trip; `total` counts all pages."""

    driver_id: str
    total: int
    rows: Sequence[StoredEpisode]


class DriverReadModels(Protocol):
    async def profile(self, driver_id: str) -> Row | None: ...

    async def trips_page(self, driver_id: str, limit: int, offset: int) -> RowsPage: ...

    async def trip(self, trip_id: uuid.UUID) -> Row | None: ...

    async def trip_episodes(self, trip_id: uuid.UUID, limit: int, offset: int) -> EpisodesPage | None:
        """The trip's episodes: its driver's detector events between its `trip_started` and `trip_ended`, that
        name it, by start (device time) then stream order. None for an unknown trip."""
        ...

    async def trip_bounds(self, trip_id: uuid.UUID) -> TripBounds | None: ...

    async def trip_positions(self, trip: TripBounds, limit: int) -> list[MaybePosition]:
        """(lat, lon) of the driver's stored readings from the trip's start to its end inclusive, by device time
        then event id, at most `limit`."""
        ...

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
