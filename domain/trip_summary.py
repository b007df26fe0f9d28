"""What a finished trip amounts to: the payload of `TripEnded`, the row of `trips`, the input of features.

Pure data. Units in names. Counts are episodes (a debounced harsh brake is one), seconds are exposure.
"""

from __future__ import annotations

import uuid

import msgspec


class TripSummary(msgspec.Struct, frozen=True, kw_only=True):
    trip_id: uuid.UUID
    driver_id: str
    start_ms: int
    end_ms: int
    distance_m: float
    duration_s: float
    avg_speed_kmh: float
    max_speed_kmh: float
    harsh_braking_count: int = 0
    harsh_acceleration_count: int = 0
    harsh_cornering_count: int = 0
    speeding_moderate_s: float = 0.0
    speeding_severe_s: float = 0.0
    night_s: float = 0.0
    phone_use_moving_s: float = 0.0
    idle_s: float = 0.0
    crash_count: int = 0
    end_reason: str = "ignition_off"  # ignition_off | parked | data_gap | device_silent (docs/DOMAIN.md §3)
    # what the data says about itself, e.g. "ignition_off_while_moving" (the recording was cut off at speed)
    quality_flags: tuple[str, ...] = ()
