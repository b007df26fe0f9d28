"""TelematicsApi: the public REST API as a client sees it (ingest, a driver's trips, a trip's episodes), for the
replay of a file of readings (usecases/replay.py).

Adapters: `storage.http.telematics_api.HttpTelematicsApi` (httpx, one retry of a dropped connection or a 503 as
docs/API.md asks of clients) and the fake `storage.memory.telematics_api.InMemoryTelematicsApi`; both pass
tests/contracts/telematics_api_contract.py. Trips and episodes cross in the domain's shapes (`TripSummary`,
`domain.trip_episodes.Episode`), times as device epoch milliseconds.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from domain.trip_episodes import Episode
from domain.trip_summary import TripSummary


class ApiUnavailable(Exception):
    """The API did not answer (unreachable, timed out, 5xx after the retry); the message says which, in one line."""


class ApiRefused(Exception):
    """The API refused the caller for good (a wrong login, an expired token); the message says why, in one line."""


@dataclass(frozen=True, slots=True)
class ReadingRefusal:
    """One reading of a batch the API refused: its `index` in the batch, the reason tag and the API's message."""

    index: int
    reason: str
    message: str


@dataclass(frozen=True, slots=True)
class IngestAnswer:
    """What the API made of one batch: `accepted` readings, `refused` ones (per reading), or, when it refused the
    batch whole (another driver's readings, too many), `batch_refusal` names why and nothing was accepted."""

    accepted: int
    refused: tuple[ReadingRefusal, ...] = ()
    batch_refusal: str | None = None


class TelematicsApi(Protocol):
    async def post_readings(self, readings: Sequence[bytes]) -> IngestAnswer:
        """Post one batch of readings, each a JSON object as a device sends it (at most the API's
        `ingest_max_readings`). Safe to repeat: readings are stored once per event id."""
        ...

    async def trips_ending_since(self, driver_id: str, since_ms: int) -> list[TripSummary]:
        """The driver's trips that end at or after `since_ms`, newest first ([] for a driver with none yet)."""
        ...

    async def trip_episodes(self, trip_id: uuid.UUID) -> list[Episode]:
        """The trip's episodes by start time (the events route, every page)."""
        ...
