"""One scoring round over the ports: the drivers with pending trip ends in, their scores stored and projected.

Every trip end gets exactly one score, fixed by the log (docs/SCORING.md, "Deterministic risk history"):
1. each driver's unscored trips are loaded from the store (not taken from the submissions, which a crash may
   have lost), oldest first, so trip N+1 is never scored while an earlier trip N is unscored;
2. each trip's features are those of the window ending at its end (device time), all of a driver's windows
   loaded in one span; the model answers for all trips of the round in one call;
3. `domain.scoring.score_driver_trips` chains the premium through a driver's trips in order;
4. one store write (StalePolicy: reload the policies, recompute, up to `STALE_POLICY_ATTEMPTS`), then one
   publish of what is stored. No Ray, no database driver: the actor wires the adapters in.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from domain.features import driver_features
from domain.pricing import DEFAULT_RULES, PricingRules
from domain.risk_assessment import ScoreRequest
from domain.scoring import (
    UNKNOWN_SEQ,
    EndedTrip,
    ScoringOutcome,
    score_driver_trips,
    scored_mileage_only,
    window_start_ms,
    window_trips,
)
from usecases.ports.clock import Clock, SystemClock
from usecases.ports.risk_model import RiskModel
from usecases.ports.score_store import ScoredTrip, ScorePublisher, ScoreStore, StalePolicy, TripSpan

T = TypeVar("T")
Retry = Callable[[Callable[[], Awaitable[T]], str], Awaitable[T]]

STALE_POLICY_ATTEMPTS = 3
MAX_TRIPS_PER_DRIVER = 200  # one driver's share of a round; the rest waits for the next round, oldest first


async def no_retry(operation: Callable[[], Awaitable[T]], what: str) -> T:
    return await operation()


@dataclass(frozen=True, slots=True)
class RoundResult:
    """What a round did. `more` are drivers left with unscored trips beyond the round's bounds (score them
    again soon); `phases_ms` times load, features, model, write and publish."""

    drivers: int
    scored: int
    scores_inserted: int
    events_inserted: int
    policies_updated: int
    stale_policies: int
    more: tuple[str, ...] = ()
    phases_ms: dict[str, float] = field(default_factory=dict)


@dataclass
class ScoringRound:
    """The handler: `score(drivers, known)` runs one round; `find_unscored(limit)` is the catch-up query.

    `retry(operation, what)` wraps each storage call (the actor waits out outages with it; tests need none).
    Errors propagate: RiskModelUnavailable and anything else mean "the round did not happen", and nothing
    was written unless `write_scores` committed (then the publish is retried by `retry` only)."""

    store: ScoreStore
    model: RiskModel
    publisher: ScorePublisher
    window_days: float
    rules: PricingRules = DEFAULT_RULES
    rules_version: str = ""  # domain.rules_version of `rules` and the thresholds in force, recorded per decision
    clock: Clock = field(default_factory=SystemClock)
    retry: Retry = no_retry
    max_trips: int = 2_000
    max_trips_per_driver: int = MAX_TRIPS_PER_DRIVER

    async def find_unscored(self, limit: int) -> list[EndedTrip]:
        return await self.retry(lambda: self.store.oldest_unscored_trips(limit), "find unscored trips")

    async def score(self, drivers: Sequence[str], known: Mapping[uuid.UUID, EndedTrip] | None = None) -> RoundResult:
        """Score every unscored trip of `drivers` (within the bounds), in trip order per driver. `known`: the
        submitted trips by id, whose `seq` (the offset of the reading that ended each) orders the live messages;
        trips the store finds that nobody submitted get the offset of their last stored reading."""
        known = known or {}
        laps = _Laps(self.clock)
        found = await self.retry(
            lambda: self.store.unscored_trips(drivers, self.max_trips_per_driver), "load unscored trips"
        )
        chosen, more = _bounded(drivers, found, self.max_trips, self.max_trips_per_driver)
        trips = await self._with_seqs(chosen, known)
        if not trips:
            return RoundResult(0, 0, 0, 0, 0, 0, tuple(more), laps.laps)
        spans = [_span(d, ts, self.window_days) for d, ts in trips.items()]
        inputs = await self.retry(lambda: self.store.load_inputs(spans), "load scoring inputs")
        laps.lap("load")
        requests: list[ScoreRequest] = []
        annual_km: list[float] = []
        for driver, driver_trips in trips.items():
            for trip in driver_trips:
                window = window_trips(inputs.trips.get(driver, []), trip.end_ms, self.window_days)
                features = driver_features(window, self.window_days)
                requests.append(ScoreRequest(driver_id=driver, features=tuple(features.to_vector().tolist()),
                                             mileage_only=scored_mileage_only(window)))
                annual_km.append(features.annual_km)
        laps.lap("features")
        assessments = await self.model.assess_many(requests)
        laps.lap("model")
        policies, stale = inputs.policies, 0
        while True:
            outcomes = _outcomes(trips, assessments, annual_km, policies, self.rules, requests, self.rules_version)
            try:
                result = await self.retry(lambda o=outcomes: self.store.write_scores(o), "write risk scores")
                break
            except StalePolicy:
                stale += 1
                if stale >= STALE_POLICY_ATTEMPTS:
                    raise
                policies = (await self.retry(lambda: self.store.load_inputs(spans), "reload policies")).policies
        laps.lap("write")
        scored = [
            ScoredTrip(trip, tuple(result.stored[e.event_id] for e in o.events() if e.event_id in result.stored))
            for trip, o in zip([t for ts in trips.values() for t in ts], outcomes, strict=True)
        ]
        await self.retry(lambda: self.publisher.publish(scored), "publish risk scores")
        laps.lap("publish")
        return RoundResult(
            drivers=len(trips),
            scored=len(outcomes),
            scores_inserted=result.scores_inserted,
            events_inserted=result.events_inserted,
            policies_updated=result.policies_updated,
            stale_policies=stale,
            more=tuple(more),
            phases_ms=laps.laps,
        )

    async def _with_seqs(
        self, trips: dict[str, list[EndedTrip]], known: Mapping[uuid.UUID, EndedTrip]
    ) -> dict[str, list[EndedTrip]]:
        def seq_of(trip: EndedTrip) -> int:
            held = known.get(trip.trip_id)
            return UNKNOWN_SEQ if held is None else held.seq

        unknown = [t for ts in trips.values() for t in ts if seq_of(t) == UNKNOWN_SEQ]
        looked_up = await self.retry(lambda: self.store.trip_seqs(unknown), "look up trip offsets") if unknown else {}
        seqs = {t.trip_id: looked_up.get(t.trip_id, seq_of(t)) for ts in trips.values() for t in ts}
        return {
            d: [EndedTrip(t.driver_id, t.trip_id, t.end_ms, seqs[t.trip_id]) for t in ts] for d, ts in trips.items()
        }


def _bounded(
    drivers: Sequence[str], found: Mapping[str, list[EndedTrip]], max_trips: int, per_driver: int
) -> tuple[dict[str, list[EndedTrip]], list[str]]:
    """Whole drivers in the given order while the round has room (the first always fits, cut to `max_trips`);
    a driver with a full `per_driver` page or cut short, and the drivers that did not fit, go to `more`."""
    chosen: dict[str, list[EndedTrip]] = {}
    more: list[str] = []
    room = max_trips
    for driver in dict.fromkeys(drivers):
        trips = found.get(driver, [])
        if not trips:
            continue
        if room <= 0:
            more.append(driver)
            continue
        taken = trips[:room]
        chosen[driver] = taken
        room -= len(taken)
        if len(taken) < len(trips) or len(trips) >= per_driver:
            more.append(driver)
    return chosen, more


def _span(driver: str, trips: Sequence[EndedTrip], window_days: float) -> TripSpan:
    return TripSpan(driver, window_start_ms(trips[0].end_ms, window_days), trips[-1].end_ms)


def _outcomes(trips, assessments, annual_km, policies, rules, requests, rules_version) -> list[ScoringOutcome]:
    outcomes: list[ScoringOutcome] = []
    i = 0
    for driver, driver_trips in trips.items():
        n = len(driver_trips)
        chain = list(zip(driver_trips, assessments[i : i + n], annual_km[i : i + n], strict=True))
        outcomes += score_driver_trips(chain, policies.get(driver), rules,
                                       features=[r.features for r in requests[i : i + n]],
                                       rules_version=rules_version)
        i += n
    return outcomes


class _Laps:
    """Milliseconds per phase of a round (`stats()["last_round_phases_ms"]`), for operators and tuning."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.laps: dict[str, float] = {}
        self._at = clock.monotonic_s()

    def lap(self, name: str) -> None:
        now = self.clock.monotonic_s()
        self.laps[name] = round((now - self._at) * 1000, 1)
        self._at = now
