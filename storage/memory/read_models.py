"""InMemoryDriverReadModels: the DriverReadModels port over dicts, for handler tests. Same answers as the
PostgreSQL adapter (tests/contracts/read_models.py runs on both): ordering, "unknown vs empty", the active-policy
rule (newest effective date, then lowest policy number, then id) and the scorer's (from, to] trip window."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import msgspec

from domain.events import PremiumQuoted, decode_event, event_type
from domain.ids import trip_event_id
from domain.scoring import PolicyTerms
from domain.trip_episodes import EPISODE_TAGS
from domain.trip_summary import TripSummary
from usecases.ports.read_models import (
    EpisodesPage,
    MaybePosition,
    QuoteBasis,
    Row,
    RowsPage,
    StoredEpisode,
    TripBounds,
)


def _ms(value: datetime) -> int:
    return round(value.timestamp() * 1000)


class InMemoryDriverReadModels:
    def __init__(self) -> None:
        self.drivers: dict[str, dict[str, Any]] = {}
        self.trips: list[dict[str, Any]] = []
        self.scores: list[dict[str, Any]] = []  # in recorded order
        self.policy_rows: list[dict[str, Any]] = []
        self.quotes: dict[str, list[PremiumQuoted]] = {}  # risk stream, in stream order
        self.events: list[dict[str, Any]] = []  # driver streams: stream_id, stream_version, event_type, payload…
        self.readings: list[dict[str, Any]] = []  # driver_id, ts (datetime), event_id, lat, lon

    # -- arranging (tests) --------------------------------------------------------------------------

    def add_driver(self, row: Mapping[str, Any]) -> None:
        self.drivers[row["driver_id"]] = dict(row)

    def add_trip(self, row: Mapping[str, Any]) -> None:
        self.trips.append(dict(row))

    def add_score(self, row: Mapping[str, Any]) -> None:
        self.scores.append(dict(row))

    def add_policy(self, row: Mapping[str, Any]) -> None:
        self.policy_rows.append({"vehicle_use": "personal", **row})  # the column's default (migration 0016)

    def add_quote(self, event: PremiumQuoted) -> None:
        self.quotes.setdefault(event.driver_id, []).append(event)

    def add_event(self, stream_version: int, payload_json: str) -> None:
        """A domain event of its driver's stream, as stored (JSON payload; its tag, ids and time are read from it)."""
        event = decode_event(payload_json)
        self.events.append({"stream_id": event.driver_id, "stream_version": stream_version, "event_id": event.event_id,
                            "event_type": event_type(event), "occurred_at_ms": event.occurred_at_ms,
                            "trip_id": event.trip_id, "payload": payload_json})

    def add_reading(self, driver_id: str, ts: datetime, lat: float | None, lon: float | None,
                    event_id: uuid.UUID | None = None) -> None:
        self.readings.append({"driver_id": driver_id, "ts": ts, "event_id": event_id or uuid.uuid4(), "lat": lat,
                              "lon": lon})

    # -- the port -----------------------------------------------------------------------------------

    async def profile(self, driver_id: str) -> Row | None:
        return self.drivers.get(driver_id)

    async def trips_page(self, driver_id: str, limit: int, offset: int) -> RowsPage:
        mine = sorted((t for t in self.trips if t["driver_id"] == driver_id),
                      key=lambda t: (-_ms(t["start_time"]), -_ms(t["end_time"]), str(t["trip_id"])))
        return RowsPage(driver_id in self.drivers, len(mine), mine[offset:offset + limit])

    async def trip(self, trip_id: uuid.UUID) -> Row | None:
        return next((t for t in self.trips if t["trip_id"] == trip_id), None)

    async def trip_episodes(self, trip_id: uuid.UUID, limit: int, offset: int) -> EpisodesPage | None:
        trip = await self.trip(trip_id)
        if trip is None:
            return None
        driver = trip["driver_id"]
        stream = [e for e in self.events if e["stream_id"] == driver]
        versions = {e["event_id"]: e["stream_version"] for e in stream}
        first = versions.get(trip_event_id("trip_started", trip_id))
        last = versions.get(trip_event_id("trip_ended", trip_id))
        mine = sorted((e for e in stream if first is not None and last is not None
                       and first < e["stream_version"] < last and e["event_type"] in EPISODE_TAGS
                       and e["trip_id"] == trip_id and e["occurred_at_ms"] >= _ms(trip["start_time"])),
                      key=lambda e: (e["occurred_at_ms"], e["stream_version"]))
        rows = [StoredEpisode(e["payload"], self._position_at(driver, e)) for e in mine[offset:offset + limit]]
        return EpisodesPage(driver_id=driver, total=len(mine), rows=rows)

    def _position_at(self, driver_id: str, event: Mapping[str, Any]) -> tuple[float, float] | None:
        if "lat" in msgspec.json.decode(event["payload"]):
            return None  # the event carries its own
        there = sorted((r for r in self.readings if r["driver_id"] == driver_id
                        and _ms(r["ts"]) == event["occurred_at_ms"]), key=lambda r: r["event_id"])
        return (there[0]["lat"], there[0]["lon"]) if there else None

    async def trip_bounds(self, trip_id: uuid.UUID) -> TripBounds | None:
        trip = await self.trip(trip_id)
        return None if trip is None else TripBounds(trip_id, trip["driver_id"], trip["start_time"], trip["end_time"])

    async def trip_positions(self, trip: TripBounds, limit: int) -> list[MaybePosition]:
        mine = sorted((r for r in self.readings
                       if r["driver_id"] == trip.driver_id and trip.start_time <= r["ts"] <= trip.end_time),
                      key=lambda r: (r["ts"], r["event_id"]))
        return [(r["lat"], r["lon"]) for r in mine[:limit]]

    def _scores_newest_first(self, driver_id: str) -> list[dict[str, Any]]:
        mine = [(i, s) for i, s in enumerate(self.scores) if s["driver_id"] == driver_id]
        mine.sort(key=lambda p: (-_ms(p[1]["scored_at"]), -p[0], str(p[1]["score_id"])))
        return [s for _, s in mine]

    async def latest_score(self, driver_id: str) -> tuple[bool, Row | None]:
        mine = self._scores_newest_first(driver_id)
        return driver_id in self.drivers, (mine[0] if mine else None)

    async def score_history(self, driver_id: str, limit: int, offset: int) -> RowsPage:
        mine = self._scores_newest_first(driver_id)
        return RowsPage(driver_id in self.drivers, len(mine), mine[offset:offset + limit])

    def _ranked_policies(self, driver_id: str) -> list[dict[str, Any]]:
        mine = [p for p in self.policy_rows if p["driver_id"] == driver_id]
        mine.sort(key=lambda p: (p["policy_number"], str(p["policy_id"])))
        mine.sort(key=lambda p: p["effective_date"], reverse=True)
        mine.sort(key=lambda p: p["status"] != "active")
        return mine

    async def policies(self, driver_id: str) -> tuple[bool, Sequence[Row]]:
        return driver_id in self.drivers, self._ranked_policies(driver_id)

    async def quote_basis(self, driver_id: str) -> QuoteBasis:
        active = [p for p in self._ranked_policies(driver_id) if p["status"] == "active"]
        policy = None
        if active:
            p = active[0]
            policy = PolicyTerms(policy_id=p["policy_id"], base_premium=p["base_premium"],
                                 current_premium=p["current_premium"], per_km_rate=p["per_km_rate"],
                                 currency=p["currency"])
        quotes = self.quotes.get(driver_id, [])
        ends = [_ms(t["end_time"]) for t in self.trips if t["driver_id"] == driver_id]
        return QuoteBasis(policy, quotes[-1] if quotes else None, max(ends) if ends else None)

    async def window_trips(self, driver_id: str, from_ms: int, to_ms: int) -> list[TripSummary]:
        mine = [t for t in self.trips if t["driver_id"] == driver_id and from_ms < _ms(t["end_time"]) <= to_ms
                and _ms(t["start_time"]) <= to_ms]
        mine.sort(key=lambda t: (_ms(t["start_time"]), str(t["trip_id"])))
        return [_summary(t) for t in mine]

    async def recently_active(self, since: datetime, limit: int) -> list[str]:
        latest: dict[str, datetime] = {}
        for t in self.trips:
            if t["end_time"] > since and (t["driver_id"] not in latest or t["end_time"] > latest[t["driver_id"]]):
                latest[t["driver_id"]] = t["end_time"]
        return sorted(latest, key=lambda d: latest[d], reverse=True)[:limit]


_SUMMARY_FIELDS = [n for n in TripSummary.__struct_fields__ if n not in ("start_ms", "end_ms")]


def _summary(row: Mapping[str, Any]) -> TripSummary:
    fields = {n: row[n] for n in _SUMMARY_FIELDS if n in row}
    if "quality_flags" in fields:
        fields["quality_flags"] = tuple(fields["quality_flags"])
    return TripSummary(start_ms=_ms(row["start_time"]), end_ms=_ms(row["end_time"]), **fields)
