"""What a finished trip amounts to: the payload of `TripEnded`, the row of `trips`, the input of features.

Pure data. Units in names. Counts are episodes (a debounced harsh brake is one), seconds are exposure.
`harsh_*_count` counts the episodes that count as harsh: grades medium and high. The grade fields say how
many of those were high, and how many low-grade episodes (not harsh, not in the count) there were;
medium = count − high. Summaries written before grades existed decode with low = high = 0: all their
episodes are medium (docs/DOMAIN.md §7).
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
    harsh_braking_low_count: int = 0
    harsh_braking_high_count: int = 0
    harsh_acceleration_low_count: int = 0
    harsh_acceleration_high_count: int = 0
    harsh_cornering_low_count: int = 0
    harsh_cornering_high_count: int = 0
    # what the data says about itself, e.g. "ignition_off_while_moving" (the recording was cut off at speed)
    quality_flags: tuple[str, ...] = ()


HARSH_KINDS = ("braking", "acceleration", "cornering")
# quality flag of a trip folded from readings whose positions were stripped (a mileage_only driver, docs/PRIVACY.md
# §3): its distance is speed × time and the score uses mileage-only inputs (docs/SCORING.md)
MILEAGE_ONLY_FLAG = "mileage_only"


def grade_counts(count: int, low: int, high: int) -> dict[str, int]:
    """Episodes per grade of one kind from its harsh count (medium + high), low count and high count."""
    return {"low": low, "medium": count - high, "high": high}


def harsh_by_grade(summary: TripSummary) -> dict[str, dict[str, int]]:
    """Episodes per kind and grade: {"braking": {"low": n, "medium": n, "high": n}, ...}."""
    return {
        kind: grade_counts(
            getattr(summary, f"harsh_{kind}_count"),
            getattr(summary, f"harsh_{kind}_low_count"),
            getattr(summary, f"harsh_{kind}_high_count"),
        )
        for kind in HARSH_KINDS
    }
