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
    # How far in the past a reading may be when it arrives through the public ingest route (docs/SECURITY.md §6):
    # older ones are refused (`ts_backdated`) and go through the admin import. None: only retention limits the
    # past — the pipeline's own rules (Kafka producers are ours) and the admin import.
    max_backdate_s: int | None = None
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
    # Magnitudes are one-second-scale means (docs/DOMAIN.md §4): longitudinal = GNSS speed change over the
    # last two intervals (the device accelerometer only when no speed is known), lateral = the device's
    # lateral acceleration, else heading rate × speed. An episode opens at the `low` grade threshold
    # (`harsh_*_mps2`), stays open down to the exit threshold, and is graded by its peak:
    #   low ≥ entry, medium ≥ `*_medium_mps2`, high ≥ `*_high_mps2`. Only medium and high count as
    #   harsh (summary counts, features, scoring); low episodes are events for the record.
    # Longitudinal: 0.25 g (2.5 m/s²) is the deceleration event of common device defaults (Positrace:
    # 250 mg); per-second speed drops of 7 and 9 mph/s (3.1 and 4.0 m/s²) are Verizon Connect's moderate and
    # severe hard-braking examples, i.e. thresholds on one-second means; 0.3 g is NHTSA's harsh braking
    # (cited by CMT) and ~0.4 g the "high" level of phone apps. Acceleration uses the same levels.
    harsh_braking_mps2: float = -2.5
    harsh_braking_medium_mps2: float = -3.1
    harsh_braking_high_mps2: float = -4.0
    harsh_acceleration_mps2: float = 2.5
    harsh_acceleration_medium_mps2: float = 3.1
    harsh_acceleration_high_mps2: float = 4.0
    # Lateral: 0.3 g (3.0 m/s², Positrace's harsh-turn default) opens, 0.36 g (3.5 m/s², between that and
    # GPS Insight's 0.38 g for light vehicles) is medium, ~0.46 g (4.5 m/s²) high.
    harsh_cornering_mps2: float = 3.0
    harsh_cornering_medium_mps2: float = 3.5
    harsh_cornering_high_mps2: float = 4.5
    # Our choice: hysteresis exit at about four fifths of the entry, so a brake hovering around the
    # entry stays one episode instead of flickering into several.
    harsh_braking_exit_mps2: float = -2.0
    harsh_acceleration_exit_mps2: float = 2.0
    harsh_cornering_exit_mps2: float = 2.5
    # Our choice: over 3 s between samples the acceleration (and heading rate) is not trustworthy.
    harsh_max_gap_s: float = 3.0
    # Our choice: below 10 km/h heading is GPS noise and "harsh" manoeuvres are parking.
    harsh_min_speed_kmh: float = 10.0
    # Heading-derived cornering (no device lateral): GNSS course has gross single-fix errors, which give a
    # rate spike one way then back the other. An episode must turn the same way for this many samples,
    # or for `harsh_heading_corroborated_samples` when the bearing between consecutive positions turns
    # the same way past the exit threshold (an independent witness). Our choice, measured in docs/DOMAIN.md.
    harsh_heading_min_samples: int = 3
    harsh_heading_corroborated_samples: int = 2
    # Our choice: a bearing between two positions closer than this is noise (GNSS position noise is metres).
    harsh_min_displacement_m: float = 2.0

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
    # Issue 16 (first notice of loss): a claim carries the readings of the 30 s before and after the impact
    # (pre-buffer kept only while in a trip; at 1 Hz ≤ 30 readings each side in the snapshot and the event).
    crash_pre_s: float = 30.0
    crash_post_s: float = 30.0

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
        if not self.harsh_braking_high_mps2 <= self.harsh_braking_medium_mps2 <= self.harsh_braking_mps2:
            problems.append("need harsh_braking_high_mps2 <= harsh_braking_medium_mps2 <= harsh_braking_mps2")
        if not self.harsh_acceleration_mps2 <= self.harsh_acceleration_medium_mps2 <= self.harsh_acceleration_high_mps2:
            problems.append("need harsh_acceleration_mps2 <= _medium_mps2 <= _high_mps2")
        if not self.harsh_cornering_mps2 <= self.harsh_cornering_medium_mps2 <= self.harsh_cornering_high_mps2:
            problems.append("need harsh_cornering_mps2 <= _medium_mps2 <= _high_mps2")
        if not 1 <= self.harsh_heading_corroborated_samples <= self.harsh_heading_min_samples:
            problems.append("need 1 <= harsh_heading_corroborated_samples <= harsh_heading_min_samples")
        if not (0 <= self.night_start_h <= 23 and 0 <= self.night_end_h <= 23):
            problems.append("night hours must be within 0..23")
        if self.reorder_window_ms < 0 or self.exposure_max_interval_s <= 0.0:
            problems.append("need reorder_window_ms >= 0 and exposure_max_interval_s > 0")
        if problems:
            raise ValueError("invalid TripRules: " + "; ".join(problems))
