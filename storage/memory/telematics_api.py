"""InMemoryTelematicsApi: the TelematicsApi port without HTTP, for the replay's handler tests. Same answers as the
real API (tests/contracts/telematics_api_contract.py runs on both): readings validated by domain.validation with
its reasons per index, a batch refused whole when it is too large or holds another driver's readings, trips newest
first, episodes by start. Trips and episodes are arranged by the test; a trip may show only after some polls, as
one does once the pipeline has processed the reading after its end."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from domain.rules import ValidationRules
from domain.trip_episodes import Episode
from domain.trip_summary import TripSummary
from domain.validation import decode_batch
from usecases.ports.telematics_api import ApiUnavailable, IngestAnswer, ReadingRefusal


class InMemoryTelematicsApi:
    def __init__(self, *, now_ms: int, max_readings: int = 1000, driver_id: str | None = None,
                 rules: ValidationRules | None = None) -> None:
        self.now_ms = now_ms
        self.max_readings = max_readings
        self.driver_id = driver_id  # a driver's login posts only their own readings; None: an admin
        self.rules = rules or ValidationRules()
        self.accepted: list[bytes] = []
        self.batches: list[int] = []  # size of every batch posted
        self.available = True
        self._trips: list[tuple[TripSummary, int]] = []  # (trip, polls before it shows)
        self._episodes: dict[uuid.UUID, list[Episode]] = {}
        self.polls = 0

    # -- arranging (tests) --------------------------------------------------------------------------

    def add_trip(self, trip: TripSummary, shows_after_polls: int = 0,
                 episodes: Sequence[Episode] = ()) -> None:
        self._trips.append((trip, shows_after_polls))
        self._episodes[trip.trip_id] = sorted(episodes, key=lambda e: e.start_ms)

    # -- the port -----------------------------------------------------------------------------------

    async def post_readings(self, readings: Sequence[bytes]) -> IngestAnswer:
        self._check_available()
        self.batches.append(len(readings))
        if len(readings) > self.max_readings:
            return IngestAnswer(accepted=0, batch_refusal="batch_too_large")
        valid, rejects = decode_batch(list(readings), self.now_ms, self.rules)
        if self.driver_id is not None and any(r.driver_id != self.driver_id for r in valid):
            return IngestAnswer(accepted=0, batch_refusal="forbidden")
        refused = tuple(ReadingRefusal(i, r.reason.value, r.message) for i, r in rejects)
        refused_at = {r.index for r in refused}
        self.accepted += [raw for i, raw in enumerate(readings) if i not in refused_at]
        return IngestAnswer(accepted=len(valid), refused=refused)

    async def trips_ending_since(self, driver_id: str, since_ms: int) -> list[TripSummary]:
        self._check_available()
        self.polls += 1
        shown = [t for t, after in self._trips if self.polls > after and t.driver_id == driver_id
                 and t.end_ms >= since_ms]
        return sorted(shown, key=lambda t: t.start_ms, reverse=True)

    async def trip_episodes(self, trip_id: uuid.UUID) -> list[Episode]:
        self._check_available()
        return list(self._episodes.get(trip_id, ()))

    def _check_available(self) -> None:
        if not self.available:
            raise ApiUnavailable("cannot reach the API at memory://: connection refused")
