"""Interval accounting and detectors for one reading inside an open trip (used by `domain.trip_machine`).

Pure; mutates the trip state it is given. The interval [p, r) between the previous reading p and the
new reading r is attributed to p's state: distance (when either sample moves), moving time or stop
time, night exposure (exact, local time), speeding and phone-use exposure (capped at
`exposure_max_interval_s`). Then the harsh detectors run on r (gated by `harsh_max_gap_s` and
`harsh_min_speed_kmh`).
"""

from __future__ import annotations

from domain.detectors import harsh, phone, speeding
from domain.detectors.night import night_seconds
from domain.driver_state import DriverState, OpenTrip
from domain.events import DomainEvent
from domain.geo import haversine_m, lateral_accel_from_heading_mps2
from domain.readings import Reading, ReadingType
from domain.rules import TripRules


def advance(
    state: DriverState, trip: OpenTrip, p: Reading, r: Reading, rules: TripRules, out: list[DomainEvent]
) -> None:
    """Account for the interval [p, r) (attributed to p's state) and run the detectors on r."""
    dt_ms = r.ts_ms - p.ts_ms
    dt_s = dt_ms / 1000.0
    speed = r.speed_kmh
    pspeed = p.speed_kmh
    motion = rules.motion_speed_kmh
    moving_prev = pspeed >= motion
    if moving_prev or speed >= motion:
        trip.distance_m += haversine_m(p.lat, p.lon, r.lat, r.lon)
    if speed > trip.max_speed_kmh:
        trip.max_speed_kmh = speed
    cap_s = rules.exposure_max_interval_s
    exposure_s = dt_s if dt_s < cap_s else cap_s
    night_s = night_seconds(p.ts_ms, r.ts_ms, state.timezone, rules.night_start_h, rules.night_end_h)
    if moving_prev:
        trip.moving_s += exposure_s
        trip.night_s += night_s
    else:
        trip.stop_idle_s += exposure_s
        trip.stop_night_s += night_s
    if speed >= motion:
        if trip.stop_since_ms is not None:
            trip.idle_s += trip.stop_idle_s
            trip.night_s += trip.stop_night_s
            trip.stop_idle_s = trip.stop_night_s = 0.0
            trip.stop_since_ms = None
    elif trip.stop_since_ms is None:
        trip.stop_since_ms = r.ts_ms

    _harsh(state, trip, p, r, dt_ms, rules, out)
    _exposure_episodes(state, trip, p, r, exposure_s, dt_s, rules, out)


def _harsh(
    state: DriverState, trip: OpenTrip, p: Reading, r: Reading, dt_ms: int, rules: TripRules, out: list[DomainEvent]
) -> None:
    """Harsh episodes, gated by the sample gap (no start, and an open episode ends at its last sample)
    and by the speed floor (no start)."""
    speed = r.speed_kmh
    pspeed = p.speed_kmh
    gap_ok = dt_ms <= rules.harsh_max_gap_s * 1000.0
    can_start = gap_ok and (speed if speed > pspeed else pspeed) >= rules.harsh_min_speed_kmh
    a = r.accel_ms2
    if trip.braking is not None or (can_start and a <= rules.harsh_braking_mps2):
        trip.braking, closed = harsh.track(
            trip.braking, -a, -rules.harsh_braking_mps2, -rules.harsh_braking_exit_mps2,
            can_start, gap_ok, r, pspeed,
        )  # fmt: skip
        if closed is not None:
            trip.harsh_braking_count += 1
            trip.emit(harsh.to_event("braking", closed, state.driver_id, trip.trip_id), out)
    if trip.accelerating is not None or (can_start and a >= rules.harsh_acceleration_mps2):
        trip.accelerating, closed = harsh.track(
            trip.accelerating, a, rules.harsh_acceleration_mps2, rules.harsh_acceleration_exit_mps2,
            can_start, gap_ok, r, pspeed,
        )  # fmt: skip
        if closed is not None:
            trip.harsh_acceleration_count += 1
            trip.emit(harsh.to_event("acceleration", closed, state.driver_id, trip.trip_id), out)

    lateral = r.lateral_accel_ms2
    source = "device"
    if lateral is not None:
        lateral = abs(lateral)
    elif dt_ms == 0:
        return  # two samples at the same instant: no heading rate, the cornering detector skips it
    elif gap_ok and min(speed, pspeed) >= rules.harsh_min_speed_kmh:
        lateral = lateral_accel_from_heading_mps2(p.heading, r.heading, dt_ms / 1000.0, (speed + pspeed) * 0.5)
        source = "heading"
    if trip.cornering is not None or (can_start and lateral is not None and lateral >= rules.harsh_cornering_mps2):
        trip.cornering, closed = harsh.track(
            trip.cornering, lateral, rules.harsh_cornering_mps2, rules.harsh_cornering_exit_mps2,
            can_start, gap_ok, r, pspeed, source,
        )  # fmt: skip
        if closed is not None:
            trip.harsh_cornering_count += 1
            trip.emit(harsh.to_event("cornering", closed, state.driver_id, trip.trip_id), out)


def _exposure_episodes(
    state: DriverState,
    trip: OpenTrip,
    p: Reading,
    r: Reading,
    exposure_s: float,
    dt_s: float,
    rules: TripRules,
    out: list[DomainEvent],
) -> None:
    """Speeding and phone use: the interval belongs to p; a gap over the cap closes them at p."""
    exposure_ok = dt_s <= rules.exposure_max_interval_s
    if trip.speeding is not None or r.speed_limit_kmh is not None:
        trip.speeding, closed_sp = speeding.advance(trip.speeding, p.ts_ms, r, exposure_s, exposure_ok, rules)
        if closed_sp is not None:
            close_speeding(state, trip, closed_sp, rules, out)
    if trip.phone is not None or r.type == ReadingType.PHONE_USE:
        trip.phone, closed_ph = phone.advance(trip.phone, p.ts_ms, r, exposure_s, exposure_ok, rules)
        if closed_ph is not None:
            close_phone(state, trip, closed_ph, out)


def close_speeding(
    state: DriverState, trip: OpenTrip, ep: speeding.SpeedingEpisode, rules: TripRules, out: list[DomainEvent]
) -> None:
    """A closed speeding episode: an event and exposure if it lasted `speeding_min_duration_s`, else nothing."""
    if speeding.qualifies(ep, rules):
        trip.speeding_moderate_s += ep.moderate_s
        trip.speeding_severe_s += ep.severe_s
        trip.emit(speeding.to_event(ep, state.driver_id, trip.trip_id), out)


def close_phone(state: DriverState, trip: OpenTrip, ep: phone.PhoneEpisode, out: list[DomainEvent]) -> None:
    """A closed phone-use episode: an event and exposure when it has moving seconds."""
    event = phone.to_event(ep, state.driver_id, trip.trip_id)
    if event is not None:
        trip.phone_use_moving_s += ep.moving_s
        trip.emit(event, out)
