"""Interval accounting and detectors for one reading inside an open trip (used by `domain.trip_machine`).

Pure; mutates the trip state it is given. The interval [p, r) between the previous reading p and the
new reading r is attributed to p's state: distance (when either sample moves), moving time or stop
time, night exposure (exact, local time), speeding and phone-use exposure (capped at
`exposure_max_interval_s`). Then the harsh detectors run on r (gated by `harsh_max_gap_s` and
`harsh_min_speed_kmh`). Speeds are the readings' or, where a device did not know, derived from positions
(`domain.detectors.motion`), so unknown fields never stop the accounting.
"""

from __future__ import annotations

from domain.detectors import harsh, motion, phone, speeding
from domain.detectors.night import night_seconds
from domain.driver_state import DriverState, OpenTrip
from domain.events import DomainEvent
from domain.readings import Reading, ReadingType
from domain.rules import TripRules

# kind -> (open episode attribute, medium+high count, low count, high count) on OpenTrip
_HARSH_SLOTS = {
    "braking": ("braking", "harsh_braking_count", "harsh_braking_low_count", "harsh_braking_high_count"),
    "acceleration": ("accelerating", "harsh_acceleration_count", "harsh_acceleration_low_count",
                     "harsh_acceleration_high_count"),
    "cornering": ("cornering", "harsh_cornering_count", "harsh_cornering_low_count", "harsh_cornering_high_count"),
}


def advance(
    state: DriverState, trip: OpenTrip, p: Reading, r: Reading, rules: TripRules, out: list[DomainEvent]
) -> None:
    """Account for the interval [p, r) (attributed to p's state) and run the detectors on r."""
    interval, trip.motion = motion.observe(trip.motion, p, r, rules)
    dt_ms = interval.dt_ms
    dt_s = dt_ms / 1000.0
    speed = interval.speed_kmh
    pspeed = interval.prev_speed_kmh
    motion_kmh = rules.motion_speed_kmh
    moving_prev = pspeed >= motion_kmh
    if moving_prev or speed >= motion_kmh:
        trip.distance_m += interval.dist_m()
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
    if speed >= motion_kmh:
        if trip.stop_since_ms is not None:
            trip.idle_s += trip.stop_idle_s
            trip.night_s += trip.stop_night_s
            trip.stop_idle_s = trip.stop_night_s = 0.0
            trip.stop_since_ms = None
    elif trip.stop_since_ms is None:
        trip.stop_since_ms = r.ts_ms

    _harsh(state, trip, r, interval, rules, out)
    _exposure_episodes(state, trip, p, r, speed, exposure_s, dt_s, rules, out)


def _harsh(
    state: DriverState, trip: OpenTrip, r: Reading, iv: motion.Interval, rules: TripRules, out: list[DomainEvent]
) -> None:
    """Harsh episodes, gated by the sample gap (no start, and an open episode ends at its last sample)
    and by the speed floor (no start; heading-derived cornering needs both samples above it)."""
    speed = iv.speed_kmh
    pspeed = iv.prev_speed_kmh
    max_gap_ms = rules.harsh_max_gap_s * 1000.0
    gap_ok = iv.dt_ms <= max_gap_ms
    can_start = gap_ok and (speed if speed > pspeed else pspeed) >= rules.harsh_min_speed_kmh
    # A longitudinal estimate spans up to three samples: the fastest of them decides (a hard stop from
    # 25 km/h ends in two samples under the floor).
    lon_can_start = gap_ok and iv.window_speed_kmh >= rules.harsh_min_speed_kmh
    lon = iv.longitudinal_mps2
    if trip.braking is not None or (lon_can_start and lon is not None and lon <= rules.harsh_braking_mps2):
        trip.braking, closed = harsh.track(
            trip.braking, None if lon is None else -lon, enter=-rules.harsh_braking_mps2,
            exit_=-rules.harsh_braking_exit_mps2, can_start=lon_can_start, gap_ok=gap_ok, max_gap_ms=max_gap_ms,
            reading=r, prev_speed_kmh=pspeed,
        )  # fmt: skip
        if closed is not None:
            close_harsh(state, trip, "braking", closed, rules, out)
    if trip.accelerating is not None or (
        lon_can_start and lon is not None and lon >= rules.harsh_acceleration_mps2
    ):
        trip.accelerating, closed = harsh.track(
            trip.accelerating, lon, enter=rules.harsh_acceleration_mps2, exit_=rules.harsh_acceleration_exit_mps2,
            can_start=lon_can_start, gap_ok=gap_ok, max_gap_ms=max_gap_ms, reading=r, prev_speed_kmh=pspeed,
        )  # fmt: skip
        if closed is not None:
            close_harsh(state, trip, "acceleration", closed, rules, out)

    lateral = iv.lateral_mps2  # heading-derived only when both samples are above the speed floor (motion.py)
    if trip.cornering is not None or (
        can_start and lateral is not None and (lateral if lateral >= 0.0 else -lateral) >= rules.harsh_cornering_mps2
    ):
        trip.cornering, closed = harsh.track(
            trip.cornering, lateral, enter=rules.harsh_cornering_mps2, exit_=rules.harsh_cornering_exit_mps2,
            can_start=can_start, gap_ok=gap_ok, max_gap_ms=max_gap_ms, reading=r, prev_speed_kmh=pspeed,
            signed=True, source=iv.lateral_source, witness=iv.witness_mps2() if iv.lateral_from_course else None,
        )  # fmt: skip
        if closed is not None:
            close_harsh(state, trip, "cornering", closed, rules, out)


def close_harsh(
    state: DriverState, trip: OpenTrip, kind: str, episode: harsh.HarshEpisode, rules: TripRules,
    out: list[DomainEvent],
) -> None:
    """A closed harsh episode: if it qualifies, count it by grade and emit its event."""
    if not harsh.qualifies(kind, episode, rules):
        return
    grade = harsh.grade_of(kind, episode.peak_mps2, rules)
    _, scored, low, high = _HARSH_SLOTS[kind]
    if grade == harsh.LOW:
        setattr(trip, low, getattr(trip, low) + 1)
    else:
        setattr(trip, scored, getattr(trip, scored) + 1)
        if grade == harsh.HIGH:
            setattr(trip, high, getattr(trip, high) + 1)
    trip.emit(harsh.to_event(kind, episode, state.driver_id, trip.trip_id, grade), out)


def close_open_harsh(state: DriverState, trip: OpenTrip, rules: TripRules, out: list[DomainEvent]) -> None:
    """The trip ends: harsh episodes still open close at their last sample (braking, acceleration, cornering)."""
    for kind, (attr, *_counts) in _HARSH_SLOTS.items():
        episode = getattr(trip, attr)
        if episode is not None:
            setattr(trip, attr, None)
            close_harsh(state, trip, kind, episode, rules, out)


def _exposure_episodes(
    state: DriverState,
    trip: OpenTrip,
    p: Reading,
    r: Reading,
    speed_kmh: float,
    exposure_s: float,
    dt_s: float,
    rules: TripRules,
    out: list[DomainEvent],
) -> None:
    """Speeding and phone use: the interval belongs to p; a gap over the cap closes them at p."""
    exposure_ok = dt_s <= rules.exposure_max_interval_s
    if trip.speeding is not None or r.speed_limit_kmh is not None:
        trip.speeding, closed_sp = speeding.advance(
            trip.speeding, p.ts_ms, r, speed_kmh, exposure_s, exposure_ok, rules
        )
        if closed_sp is not None:
            close_speeding(state, trip, closed_sp, rules, out)
    if trip.phone is not None or r.type == ReadingType.PHONE_USE:
        trip.phone, closed_ph = phone.advance(trip.phone, p.ts_ms, r, speed_kmh, exposure_s, exposure_ok, rules)
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
