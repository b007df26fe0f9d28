"""Privacy modes (a driver's consent) and what they withhold: pure decisions, folded from the `privacy:{id}` stream.

Modes (docs/PRIVACY.md): `full` (the default: positions kept and shown), `private_trips` (the driver may mark a
trip private: its route and positions are withheld from every route and feed, admins included; its summary still
counts in the score), `mileage_only` (no positions shown or streamed at all, the earlier trips' included).
An erased driver's positions are withheld everywhere whatever the mode. Time is an input (`now_ms`): a consent is
a person's act, stamped with server time by the caller.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from typing import Any, Literal

import msgspec

from domain.events import DomainEventBase, DriverErased, PrivacyModeChanged, TripMarkedPrivate
from domain.ids import derive_id
from domain.readings import Reading

Mode = Literal["full", "private_trips", "mileage_only"]
MODES: tuple[Mode, ...] = ("full", "private_trips", "mileage_only")
DEFAULT_MODE: Mode = "full"
PrivacyEvent = PrivacyModeChanged | TripMarkedPrivate | DriverErased
# What a live message or an episode may say about where the driver was (positions, the crash samples around one).
POSITION_FIELDS = ("lat", "lon", "heading")
SAMPLE_FIELDS = ("pre", "post")


class PrivacyRefused(Exception):
    """A consent request that the current state does not allow (e.g. marking a trip private in `full` mode)."""


class PrivacyState(msgspec.Struct, frozen=True, kw_only=True):
    """A driver's consent as of the last privacy event: mode, the trips they withheld, whether they were erased."""

    driver_id: str
    mode: Mode = DEFAULT_MODE
    private_trips: frozenset[uuid.UUID] = frozenset()
    erased: bool = False
    version: int = 0  # events folded: the privacy stream's head

    @property
    def live_positions(self) -> bool:
        """Whether live feeds may stream this driver's positions: only in `full` mode and never after erasure (a
        trip in progress may be marked private once it ended; what was streamed cannot be unsent)."""
        return self.mode == "full" and not self.erased

    @property
    def strips_positions(self) -> bool:
        """Whether the pipeline drops this driver's positions from new readings before anything stores or
        publishes them (docs/PRIVACY.md §3): in `mileage_only` and after erasure."""
        return self.mode == "mileage_only" or self.erased

    def withholds(self, trip_id: uuid.UUID | None) -> bool:
        """Whether positions of trip `trip_id` (None: outside any trip) are withheld from routes and feeds."""
        return self.erased or self.mode == "mileage_only" or (trip_id is not None and trip_id in self.private_trips)


def privacy_stream_id(driver_id: str) -> str:
    """The driver's privacy stream (`:` never occurs in a driver id, so it collides with no trip stream)."""
    return f"privacy:{driver_id}"


def fold(state: PrivacyState, event: DomainEventBase) -> PrivacyState:
    """The state after one privacy event (other events leave it unchanged)."""
    if isinstance(event, PrivacyModeChanged):
        return msgspec.structs.replace(state, mode=event.mode, version=state.version + 1)
    if isinstance(event, TripMarkedPrivate) and event.trip_id is not None:
        return msgspec.structs.replace(state, private_trips=state.private_trips | {event.trip_id},
                                       version=state.version + 1)
    if isinstance(event, DriverErased):
        return msgspec.structs.replace(state, erased=True, version=state.version + 1)
    return state


def replay(driver_id: str, events: Iterable[DomainEventBase]) -> PrivacyState:
    """The state from the driver's privacy stream, in stream order."""
    state = PrivacyState(driver_id=driver_id)
    for event in events:
        state = fold(state, event)
    return state


def change_mode(state: PrivacyState, mode: str, by: str, role: str, now_ms: int) -> PrivacyModeChanged | None:
    """The consent change to `mode`, or None when it is the mode already (idempotent). Raises PrivacyRefused for
    an unknown mode or an erased driver (an erased profile has no one left to consent)."""
    if mode not in MODES:
        raise PrivacyRefused(f"unknown privacy mode {mode!r}: one of {', '.join(MODES)}")
    if state.erased:
        raise PrivacyRefused(f"driver {state.driver_id} was erased")
    if mode == state.mode:
        return None
    return PrivacyModeChanged(
        event_id=derive_id("privacy_mode_changed", state.driver_id, state.version + 1), driver_id=state.driver_id,
        trip_id=None, occurred_at_ms=now_ms, mode=mode, previous_mode=state.mode, changed_by=by,  # type: ignore[arg-type]
        changed_by_role=role)


def mark_trip_private(state: PrivacyState, trip_id: uuid.UUID, by: str, role: str,
                      now_ms: int) -> TripMarkedPrivate | None:
    """The event withholding one trip, or None if it is private already. Only in `private_trips` mode: in `full`
    the driver consented to showing trips; in `mileage_only` every trip is withheld already."""
    if trip_id in state.private_trips:
        return None
    if state.mode != "private_trips":
        raise PrivacyRefused(f"trips can be marked private only in the private_trips mode (the mode is {state.mode})")
    return TripMarkedPrivate(event_id=derive_id("trip_marked_private", trip_id), driver_id=state.driver_id,
                             trip_id=trip_id, occurred_at_ms=now_ms, marked_by=by, marked_by_role=role)


def erase(state: PrivacyState, by: str, reason: str, now_ms: int, readings: int = 0,
          events: int = 0) -> DriverErased | None:
    """The erasure event, or None when the driver was erased already (erasure is idempotent)."""
    if state.erased:
        return None
    return DriverErased(event_id=derive_id("driver_erased", state.driver_id), driver_id=state.driver_id,
                        trip_id=None, occurred_at_ms=now_ms, erased_by=by, reason=reason,
                        readings_scrubbed=readings, events_scrubbed=events)


def pseudonym(driver_id: str) -> str:
    """A stable stand-in for an erased driver's name and e-mail: the same id always gives the same pseudonym, and
    nothing of the person is in it."""
    return f"erased-{derive_id('erased_driver', driver_id).hex[:12]}"


def withhold_payload(payload: Mapping[str, Any]) -> dict[str, Any]:
    """An event payload without where it happened: positions dropped, crash samples emptied, and saying so."""
    kept = {k: v for k, v in payload.items() if k not in POSITION_FIELDS}
    for name in SAMPLE_FIELDS:
        if name in kept:
            kept[name] = []
    kept["positions_withheld"] = True
    return kept


def withhold_claim(claim: Mapping[str, Any], state: PrivacyState | None) -> Mapping[str, Any]:
    """A claim as its readers may see it under the driver's `state`: where it happened and the positions of its
    readings withheld when its trip's positions are (time, speed and forces stay: what a claim handler needs
    first); unchanged otherwise. `positions_withheld` says which."""
    trip_id = claim.get("trip_id")
    if state is None or not state.withholds(trip_id if isinstance(trip_id, uuid.UUID) else None):
        return {**claim, "positions_withheld": False}
    readings = [{**r, **{k: None for k in POSITION_FIELDS if k in r}} for r in claim.get("readings") or []]
    shown = {**claim, **{k: None for k in POSITION_FIELDS if k in claim}, "positions_withheld": True}
    return {**shown, "readings": readings} if "readings" in claim else shown


def redact_live(message: Mapping[str, Any], state: PrivacyState | None) -> Mapping[str, Any]:
    """A live message as the feeds may send it under `state`: unchanged when nothing is withheld; a position's
    coordinates and an event payload's positions set to null/empty with `positions_withheld: true` otherwise."""
    if state is None:
        return message
    kind = message.get("type")
    payload = message.get("payload") if isinstance(message.get("payload"), Mapping) else None
    trip = (payload or message).get("trip_id")
    try:
        trip_id = uuid.UUID(str(trip)) if trip is not None else None
    except ValueError:
        trip_id = None
    if state.live_positions and not state.withholds(trip_id):
        return message
    if kind == "position":
        return {**message, **dict.fromkeys(POSITION_FIELDS), "positions_withheld": True}
    if any(message.get(k) is not None for k in POSITION_FIELDS):  # e.g. claim_opened: where the crash happened
        return {**message, **{k: None for k in POSITION_FIELDS if k in message}, "positions_withheld": True}
    if payload is not None and any(k in payload for k in (*POSITION_FIELDS, *SAMPLE_FIELDS)):
        return {**message, "payload": withhold_payload(payload)}
    return message


def strip_positions(reading: Reading) -> Reading:
    """A reading with only distance and time left (docs/PRIVACY.md §3): position, heading, the speed limit (a map
    match of the position) and the free-form `data` (which may carry anything) dropped; id, driver, time, type,
    speed and accelerations kept. Pure."""
    if reading.lat is None and reading.heading is None and reading.speed_limit_kmh is None and reading.data is None:
        return reading
    return msgspec.structs.replace(reading, lat=None, lon=None, heading=None, speed_limit_kmh=None, data=None)


def strip_drivers(readings: Sequence[Reading], drivers: AbstractSet[str]) -> Sequence[Reading]:
    """`readings` with the positions of `drivers` (mileage_only or erased) stripped: one set lookup per reading,
    none at all when the set is empty (the usual case), so the ingest hot path does not slow down."""
    if not drivers:
        return readings
    return [strip_positions(r) if r.driver_id in drivers else r for r in readings]


def stripped_drivers(states: Iterable[PrivacyState]) -> frozenset[str]:
    """The drivers whose new readings lose their positions, from their privacy states."""
    return frozenset(s.driver_id for s in states if s.strips_positions)
