"""The trip state machine: `step(state, reading, rules) -> (state, events)` (house habit 1).

Pure and deterministic: no I/O, no clock (device timestamps and the `now_ms` of `tick` are inputs).
The same readings give the same events, with the same ids and bytes, whatever the batch boundaries,
the snapshot/restore points, or the arrival order inside `reorder_window_ms`. For speed the state is
mutated in place and returned; the caller owns it (see `domain.driver_state`).

Pipeline of one reading: late/duplicate check → reorder buffer → readings older than the newest seen
minus the window are released in (ts, event_id) order → `_process`: pending crash post-buffer, trip end
by parking/gap, trip start (ignition_on, or any moving sample opening an unconfirmed trip that is
announced once motion is sustained), interval accounting and detectors, ignition_off. docs/DOMAIN.md
explains every rule.
"""

from __future__ import annotations

from collections.abc import Iterable

from domain.detectors import crash as crash_detector
from domain.detectors.motion import MotionMemory, reading_speed_kmh
from domain.driver_state import NEVER_MS, DriverState, OpenTrip
from domain.events import DomainEvent, TripDiscarded, TripEnded, TripStarted
from domain.ids import trip_event_id, trip_id
from domain.readings import Reading, ReadingType
from domain.rules import STANDARD_GRAVITY_MPS2, TripRules
from domain.trip_interval import advance, close_open_harsh, close_phone, close_speeding
from domain.trip_summary import MILEAGE_ONLY_FLAG, TripSummary

DISCARD_REASON = "below_min_distance_and_duration"
IGNITION_OFF_WHILE_MOVING = "ignition_off_while_moving"

__all__ = ["DISCARD_REASON", "DriverState", "TripRules", "pass_log_time", "step", "step_arrived", "step_many", "tick"]


def step(state: DriverState, reading: Reading, rules: TripRules) -> tuple[DriverState, list[DomainEvent]]:
    """Fold one validated reading of `state.driver_id` into the state; return it and the new events."""
    out: list[DomainEvent] = []
    _accept(state, reading, rules, out)
    return state, out


def step_many(
    state: DriverState, readings: Iterable[Reading], rules: TripRules
) -> tuple[DriverState, list[DomainEvent]]:
    """`step` over a batch: exactly the fold of `step`, so batch boundaries never change the events."""
    out: list[DomainEvent] = []
    for reading in readings:
        _accept(state, reading, rules, out)
    return state, out


def tick(state: DriverState, now_ms: int, rules: TripRules) -> tuple[DriverState, list[DomainEvent]]:
    """Let time pass without readings (`now_ms` is pipeline time, an input): release the reorder buffer
    if the device has been silent for a whole window, emit a crash whose post window is over, and close
    a trip parked for `parking_s` or silent for more than `gap_s`. Deterministic in `now_ms`.
    """
    return _tick(state, now_ms, rules, "data_gap")


def _tick(
    state: DriverState, now_ms: int, rules: TripRules, gap_reason: str, out: list[DomainEvent] | None = None
) -> tuple[DriverState, list[DomainEvent]]:
    out = [] if out is None else out
    pending = state.pending
    if pending and now_ms - state.newest_ms >= rules.reorder_window_ms:
        if state.newest_ms > state.watermark_ms:
            state.watermark_ms = state.newest_ms
        while pending:
            _process(state, pending.pop(0), rules, out)
    crash = state.crash
    if crash is not None and now_ms > crash.post_until_ms:
        _emit_crash(state, out)
    trip = state.trip
    if trip is not None and state.last is not None:
        if trip.stop_since_ms is not None and now_ms - trip.stop_since_ms >= rules.parking_s * 1000.0:
            _close(state, trip.stop_since_ms, "parked", rules, out)
        elif now_ms - state.last.ts_ms > rules.gap_s * 1000.0:
            _close(state, state.last.ts_ms, gap_reason, rules, out)
    return state, out


def pass_log_time(state: DriverState, log_ms: int, rules: TripRules) -> tuple[DriverState, list[DomainEvent]]:
    """Log time has reached `log_ms` (docs/DOMAIN.md §3, "Silence"): the device has sent nothing for
    `log_ms - state.arrival_ms`. That silence counts as device time after its newest reading, so `tick` decides
    (release the buffer, emit a crash, close a parked trip), and a silence of more than `gap_s` closes the trip
    at its last reading as `device_silent`. A function of the log alone, so replays and any batching agree."""
    if state.arrival_ms == NEVER_MS or log_ms <= state.arrival_ms:
        return state, []
    return _tick(state, state.newest_ms + (log_ms - state.arrival_ms), rules, "device_silent")


def step_arrived(
    state: DriverState, reading: Reading, arrived_ms: int | None, rules: TripRules
) -> tuple[DriverState, list[DomainEvent]]:
    """`step` for a reading that arrived when its partition's log time was `arrived_ms` (None: unknown, its own
    time): first the silence up to that moment (`pass_log_time`), then the reading; it becomes the newest arrival.
    What the pipeline folds, live and on a replay from storage."""
    out: list[DomainEvent] = []
    if arrived_ms is not None and state.arrival_ms != NEVER_MS and arrived_ms > state.arrival_ms:
        _tick(state, state.newest_ms + (arrived_ms - state.arrival_ms), rules, "device_silent", out)
    _accept(state, reading, rules, out)
    arrival = reading.ts_ms if arrived_ms is None or arrived_ms < reading.ts_ms else arrived_ms
    if arrival > state.arrival_ms:
        state.arrival_ms = arrival
    return state, out


# --- ordering --------------------------------------------------------------------------------------


def _order_key(reading: Reading) -> tuple[int, bytes]:
    return reading.ts_ms, reading.event_id.bytes


def _accept(state: DriverState, r: Reading, rules: TripRules, out: list[DomainEvent]) -> None:
    if r.driver_id != state.driver_id:
        raise ValueError(f"reading of driver {r.driver_id!r} given to the state of {state.driver_id!r}")
    ts = r.ts_ms
    if ts <= state.watermark_ms or ts < state.last_trip_end_ms:
        state.late_readings += 1  # never changes released history; the pipeline still stores it raw
        return
    pending = state.pending
    if not pending or ts > pending[-1].ts_ms:
        pending.append(r)
    else:
        eid = r.event_id
        for p in pending:
            if p.event_id == eid:
                state.duplicate_readings += 1
                return
        key = _order_key(r)
        i = len(pending)
        while i > 0 and _order_key(pending[i - 1]) > key:
            i -= 1
        pending.insert(i, r)
    if ts > state.newest_ms:
        state.newest_ms = ts
    horizon = state.newest_ms - rules.reorder_window_ms
    if horizon > state.watermark_ms:
        state.watermark_ms = horizon
        while pending and pending[0].ts_ms <= horizon:
            _process(state, pending.pop(0), rules, out)


# --- one released reading ----------------------------------------------------------------------------


def _process(state: DriverState, r: Reading, rules: TripRules, out: list[DomainEvent]) -> None:
    ts = r.ts_ms
    crash = state.crash
    if crash is not None:
        if ts > crash.post_until_ms:
            _emit_crash(state, out)
        else:
            crash.post.append(crash_detector.sample(r))

    trip = state.trip
    last = state.last
    if trip is not None and last is not None:
        if trip.stop_since_ms is not None and ts - trip.stop_since_ms >= rules.parking_s * 1000.0:
            _close(state, trip.stop_since_ms, "parked", rules, out)
            trip = None
        elif ts - last.ts_ms > rules.gap_s * 1000.0:
            _close(state, last.ts_ms, "data_gap", rules, out)
            trip = None

    if trip is None:
        trip = _open(state, r, rules, out)
        if trip is None:
            _check_crash(state, None, r, rules, out)
            state.last = r
            return
    else:
        advance(state, trip, last, r, rules, out)  # type: ignore[arg-type]

    _check_crash(state, trip, r, rules, out)
    if r.lat is None and MILEAGE_ONLY_FLAG not in trip.quality_flags:
        trip.quality_flags.append(MILEAGE_ONLY_FLAG)  # positions stripped: scored with mileage-only inputs
    recent = trip.recent
    recent.append(r)
    keep_from = ts - rules.crash_pre_s * 1000.0
    while recent[0].ts_ms < keep_from:
        recent.pop(0)

    if r.type == ReadingType.IGNITION_OFF:
        state.last = r
        if r.speed_kmh is not None and r.speed_kmh >= rules.ignition_off_moving_kmh and (
            IGNITION_OFF_WHILE_MOVING not in trip.quality_flags
        ):
            trip.quality_flags.append(IGNITION_OFF_WHILE_MOVING)  # a recording cut off at speed, not a stop
        _close(state, ts, "ignition_off", rules, out)
        return
    if not trip.announced and (
        r.type == ReadingType.IGNITION_ON
        or trip.moving_s >= rules.start_motion_s
        or trip.distance_m >= rules.start_motion_m
    ):
        _announce(state, trip, out)
    state.last = r


def _open(state: DriverState, r: Reading, rules: TripRules, out: list[DomainEvent]) -> OpenTrip | None:
    ignition = r.type == ReadingType.IGNITION_ON
    speed = reading_speed_kmh(state.last, r)  # derived from positions when the device sent no speed
    moving = speed >= rules.motion_speed_kmh
    if not ignition and not moving:
        return None
    trip = OpenTrip(
        trip_id=trip_id(state.driver_id, r.event_id),
        start_ms=r.ts_ms,
        start_reason="ignition_on" if ignition else "motion",
        start_lat=r.lat,
        start_lon=r.lon,
        announced=False,
        max_speed_kmh=speed,
        stop_since_ms=None if moving else r.ts_ms,
        motion=MotionMemory(speed_kmh=speed),
    )
    state.trip = trip
    if ignition:
        _announce(state, trip, out)
    return trip


def _announce(state: DriverState, trip: OpenTrip, out: list[DomainEvent]) -> None:
    trip.announced = True
    out.append(
        TripStarted(
            event_id=trip_event_id("trip_started", trip.trip_id),
            driver_id=state.driver_id,
            trip_id=trip.trip_id,
            occurred_at_ms=trip.start_ms,
            start_reason=trip.start_reason,  # type: ignore[arg-type]
            lat=trip.start_lat,
            lon=trip.start_lon,
        )
    )
    if trip.held:
        out.extend(trip.held)
        trip.held = []


# --- crash ---------------------------------------------------------------------------------------------


def _check_crash(
    state: DriverState, trip: OpenTrip | None, r: Reading, rules: TripRules, out: list[DomainEvent]
) -> None:
    a = r.accel_ms2 if r.accel_ms2 is not None else 0.0
    threshold = rules.crash_g * STANDARD_GRAVITY_MPS2
    if r.type != ReadingType.CRASH and -threshold < a < threshold and r.lateral_accel_ms2 is None:
        return
    if not crash_detector.is_trigger(r, rules):
        return
    if state.crash is not None:
        crash_detector.join(state.crash, r)
        return
    if trip is not None:
        trip.crash_count += 1
        if not trip.announced:
            _announce(state, trip, out)  # a crash proves the vehicle was driven
        state.crash = crash_detector.start(r, trip.trip_id, trip.recent, rules)
    else:
        state.crash = crash_detector.start(r, None, [], rules)


def _emit_crash(state: DriverState, out: list[DomainEvent]) -> None:
    out.append(crash_detector.to_event(state.crash, state.driver_id))  # type: ignore[arg-type]
    state.crash = None


# --- trip end ------------------------------------------------------------------------------------------


def _close(state: DriverState, end_ms: int, reason: str, rules: TripRules, out: list[DomainEvent]) -> None:
    """End the open trip at `end_ms`: close its episodes, emit its crash, then TripEnded or TripDiscarded."""
    trip: OpenTrip = state.trip  # type: ignore[assignment]
    driver = state.driver_id
    close_open_harsh(state, trip, rules, out)
    if trip.speeding is not None:
        close_speeding(state, trip, trip.speeding, rules, out)
        trip.speeding = None
    if trip.phone is not None:
        close_phone(state, trip, trip.phone, out)
        trip.phone = None
    if reason != "parked" and trip.stop_since_ms is not None:
        trip.idle_s += trip.stop_idle_s  # the stop is part of the trip: it ended on ignition or silence
        trip.night_s += trip.stop_night_s
    if state.crash is not None and state.crash.trip_id == trip.trip_id:
        _emit_crash(state, out)
    state.trip = None
    state.last_trip_end_ms = end_ms
    if not trip.announced:
        state.unconfirmed_trips += 1  # never announced: nothing to retract, held events are dropped
        return
    duration_s = (end_ms - trip.start_ms) / 1000.0
    if trip.distance_m < rules.min_trip_distance_m and duration_s < rules.min_trip_duration_s:
        out.append(
            TripDiscarded(
                event_id=trip_event_id("trip_discarded", trip.trip_id),
                driver_id=driver,
                trip_id=trip.trip_id,
                occurred_at_ms=end_ms,
                reason=DISCARD_REASON,
                end_reason=reason,
                start_ms=trip.start_ms,
                end_ms=end_ms,
                distance_m=trip.distance_m,
                duration_s=duration_s,
            )
        )
        return
    summary = TripSummary(
        trip_id=trip.trip_id,
        driver_id=driver,
        start_ms=trip.start_ms,
        end_ms=end_ms,
        distance_m=trip.distance_m,
        duration_s=duration_s,
        avg_speed_kmh=trip.distance_m / duration_s * 3.6 if duration_s > 0 else 0.0,
        max_speed_kmh=trip.max_speed_kmh,
        harsh_braking_count=trip.harsh_braking_count,
        harsh_acceleration_count=trip.harsh_acceleration_count,
        harsh_cornering_count=trip.harsh_cornering_count,
        speeding_moderate_s=trip.speeding_moderate_s,
        speeding_severe_s=trip.speeding_severe_s,
        night_s=trip.night_s,
        phone_use_moving_s=trip.phone_use_moving_s,
        idle_s=trip.idle_s,
        crash_count=trip.crash_count,
        end_reason=reason,
        harsh_braking_low_count=trip.harsh_braking_low_count,
        harsh_braking_high_count=trip.harsh_braking_high_count,
        harsh_acceleration_low_count=trip.harsh_acceleration_low_count,
        harsh_acceleration_high_count=trip.harsh_acceleration_high_count,
        harsh_cornering_low_count=trip.harsh_cornering_low_count,
        harsh_cornering_high_count=trip.harsh_cornering_high_count,
        quality_flags=tuple(trip.quality_flags),
    )
    out.append(
        TripEnded(
            event_id=trip_event_id("trip_ended", trip.trip_id),
            driver_id=driver,
            trip_id=trip.trip_id,
            occurred_at_ms=end_ms,
            summary=summary,
        )
    )
