"""Thresholds of the domain, as frozen data passed in by the caller (house habit 4).

Pure data: no I/O, no settings module, no clock. Units are suffixes (`_s`, `_ms`, `_m`, `_kmh`, `_mps2`,
`_g`, `_h`). Each default says where it comes from; where it is our own product choice we say so rather
than invent a citation. docs/DOMAIN.md repeats the table with the reasoning.
"""

from __future__ import annotations

import msgspec

# Version of `DriverState.to_bytes()`. Bump on any change that an older reader could not decode, and
# add an upcaster in `domain.driver_state` (fields added with defaults at the end do not need a bump).
SNAPSHOT_FORMAT_VERSION = 1

# Standard gravity (CGPM 1901 / ISO 80000-3), used to turn g into m/s².
STANDARD_GRAVITY_MPS2 = 9.80665


class ValidationRules(msgspec.Struct, frozen=True, kw_only=True):
    """Limits applied to every inbound reading by `domain.validation`."""

    # Traccar's `filter.future` plays the same role; 5 minutes tolerates phone clocks that drift.
    max_future_skew_s: int = 300
    # DESIGN.md / the plan: raw events are kept 12 months, then archived. Readings from a month that
    # retention retires are refused (`domain.partition_calendar.retention_start_ms`, the one rule for both).
    retention_months: int = 12
    # One reading is ~300 bytes of JSON; 64 KiB leaves room for a `data` object and refuses abuse.
    max_payload_bytes: int = 64 * 1024


class TripRules(msgspec.Struct, frozen=True, kw_only=True):
    """Trip segmentation and risky-driving detection thresholds used by `domain.trip_machine.step`."""

    # --- trip segmentation -------------------------------------------------------------------------
    # Traccar `report.trip.minimalParkingDuration` default (300 s): a shorter stop does not cut a trip.
    parking_s: float = 300.0
    # Traccar `report.trip.minimalNoDataDuration` default (3600 s): a longer silence ends the trip.
    gap_s: float = 3600.0
    # Traccar `report.trip.minimalTripDistance` (500 m) and `minimalTripDuration` (300 s). Traccar's rule
    # is "trips less than minimal duration AND minimal distance are ignored": we discard only when both
    # are below (docs/DOMAIN.md).
    min_trip_distance_m: float = 500.0
    min_trip_duration_s: float = 300.0
    # Our choice: GPS Doppler speed of a parked device stays under ~2–3 km/h; 5 km/h separates a
    # crawl from drift. Traccar's own `event.motion.speedThreshold` is 0.01 knots (any movement).
    motion_speed_kmh: float = 5.0
    # Our choice, shorter than Traccar's 300 s / 500 m so live viewers see the trip sooner: a trip
    # without an ignition signal is confirmed after this much moving time OR distance. The trip is
    # backdated to its first moving reading, so nothing is lost.
    start_motion_s: float = 60.0
    start_motion_m: float = 200.0
    # Our choice: an ignition_off at this speed or more is a recording cut off while driving (a phone app
    # stopped, a device lost power), flagged on the trip as a data-quality fact; the trip still ends there.
    ignition_off_moving_kmh: float = 30.0

    # --- harsh driving (longitudinal and lateral acceleration) ---------------------------------------
    # ±3.0 m/s² (≈0.3 g) longitudinal and 3.5 m/s² lateral are thresholds that recur in telematics
    # literature and vendor documentation; there is no single authoritative standard.
    harsh_braking_mps2: float = -3.0
    harsh_acceleration_mps2: float = 3.0
    harsh_cornering_mps2: float = 3.5
    # Our choice: hysteresis exit at two thirds of the entry threshold, so a brake hovering around
    # −3.0 m/s² stays one episode instead of flickering into several.
    harsh_braking_exit_mps2: float = -2.0
    harsh_acceleration_exit_mps2: float = 2.0
    harsh_cornering_exit_mps2: float = 2.5
    # Our choice: over 3 s between samples the acceleration (and heading rate) is not trustworthy.
    harsh_max_gap_s: float = 3.0
    # Our choice: below 10 km/h heading is GPS noise and "harsh" manoeuvres are parking.
    harsh_min_speed_kmh: float = 10.0

    # --- speeding (product choice from the issue; no external citation) ------------------------------
    speeding_split_limit_kmh: float = 85.0  # limits up to this use the "low" margins, above the "high"
    speeding_moderate_low_kmh: float = 15.0
    speeding_moderate_high_kmh: float = 20.0
    speeding_severe_low_kmh: float = 30.0
    speeding_severe_high_kmh: float = 40.0
    # Our choice: shorter episodes (an overtake, a limit sign passed) are neither events nor exposure.
    speeding_min_duration_s: float = 10.0

    # --- exposure --------------------------------------------------------------------------------------
    # Our choice: an interval between two samples is attributed to the earlier sample's state (speeding,
    # phone use, idle) for at most this long; beyond it the state in between is unknown.
    exposure_max_interval_s: float = 10.0
    # Product choice from the issue: night is 23:00–05:00 in the driver's local time.
    night_start_h: int = 23
    night_end_h: int = 5
    # Product choice from the issue: phone use counts only while moving faster than this.
    phone_use_min_speed_kmh: float = 10.0

    # --- crash --------------------------------------------------------------------------------------
    # From the issue (product choice, not tuned here); published phone-based crash detectors use
    # thresholds of a few g. Devices that detect a crash themselves send a `crash` reading instead.
    crash_g: float = 2.5
    # Our choice: 10 s of context either side of the impact (pre-buffer kept only while in a trip).
    crash_pre_s: float = 10.0
    crash_post_s: float = 10.0

    # --- ordering -------------------------------------------------------------------------------------
    # Our choice: phones batch uploads and retries reorder them by a few seconds. Events are delayed by
    # this much; readings older than the released horizon are late (counted, never change history).
    reorder_window_ms: int = 5_000

    def __post_init__(self) -> None:
        problems = []
        if not 0.0 < self.parking_s <= self.gap_s:
            problems.append("need 0 < parking_s <= gap_s")
        if not self.harsh_braking_mps2 < self.harsh_braking_exit_mps2 <= 0.0:
            problems.append("need harsh_braking_mps2 < harsh_braking_exit_mps2 <= 0")
        if not 0.0 <= self.harsh_acceleration_exit_mps2 < self.harsh_acceleration_mps2:
            problems.append("need 0 <= harsh_acceleration_exit_mps2 < harsh_acceleration_mps2")
        if not 0.0 <= self.harsh_cornering_exit_mps2 < self.harsh_cornering_mps2:
            problems.append("need 0 <= harsh_cornering_exit_mps2 < harsh_cornering_mps2")
        if not (0 <= self.night_start_h <= 23 and 0 <= self.night_end_h <= 23):
            problems.append("night hours must be within 0..23")
        if self.reorder_window_ms < 0 or self.exposure_max_interval_s <= 0.0:
            problems.append("need reorder_window_ms >= 0 and exposure_max_interval_s > 0")
        if problems:
            raise ValueError("invalid TripRules: " + "; ".join(problems))
