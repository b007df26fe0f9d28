"""What the driver queries answer, as msgspec Structs encoded once to JSON bytes (the cached representation).

Field names, order and JSON types match the OpenAPI models of deployments/api/schemas.py (a unit test
compares them); building a Struct from a row does no validation, so a cache miss costs a few microseconds of
shaping instead of a pydantic validate + dump.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import msgspec

from domain.privacy import PrivacyState
from domain.trip_summary import HARSH_KINDS, grade_counts


class DriverView(msgspec.Struct, kw_only=True):
    driver_id: str
    first_name: str
    last_name: str
    email: str
    phone: str | None
    license_number: str | None
    date_of_birth: date | None
    timezone: str
    is_active: bool
    created_at: datetime
    updated_at: datetime


class GradeCountsView(msgspec.Struct, kw_only=True):
    low: int
    medium: int
    high: int


class HarshByGradeView(msgspec.Struct, kw_only=True):
    braking: GradeCountsView
    acceleration: GradeCountsView
    cornering: GradeCountsView


class TripView(msgspec.Struct, kw_only=True):
    trip_id: uuid.UUID
    driver_id: str
    start_time: datetime
    end_time: datetime
    distance_m: float
    duration_s: float
    avg_speed_kmh: float
    max_speed_kmh: float
    harsh_braking_count: int
    harsh_acceleration_count: int
    harsh_cornering_count: int
    speeding_moderate_s: float
    speeding_severe_s: float
    night_s: float
    phone_use_moving_s: float
    idle_s: float
    crash_count: int
    end_reason: str
    harsh_by_grade: HarshByGradeView
    quality_flags: list[str] = []
    private: bool = False
    positions_withheld: bool = False


_TRIP_COLUMNS = tuple(n for n in TripView.__struct_fields__
                      if n not in ("harsh_by_grade", "quality_flags", "private", "positions_withheld"))


def trip_view(row: Any, privacy: PrivacyState | None = None) -> TripView:
    """A `trips` row (harsh counts flat: count = medium + high, plus low and high) as the trip view."""
    grades = {
        kind: GradeCountsView(**grade_counts(row[f"harsh_{kind}_count"], row.get(f"harsh_{kind}_low_count", 0),
                                             row.get(f"harsh_{kind}_high_count", 0)))
        for kind in HARSH_KINDS
    }
    trip_id = row["trip_id"]
    return TripView(**{n: row[n] for n in _TRIP_COLUMNS}, harsh_by_grade=HarshByGradeView(**grades),
                    quality_flags=list(row.get("quality_flags") or ()),
                    private=privacy is not None and trip_id in privacy.private_trips,
                    positions_withheld=privacy is not None and privacy.withholds(trip_id))


class PageView(msgspec.Struct, kw_only=True):
    items: list[Any]
    page: int
    page_size: int
    total: int


class FactorView(msgspec.Struct, kw_only=True):
    name: str
    contribution: float


class RiskScoreView(msgspec.Struct, kw_only=True):
    driver_id: str
    source: str  # "scored" | "prior"
    score: float
    band: str
    model_version: str
    feature_hash: str
    credibility: float
    scored_at: datetime | None
    trip_id: uuid.UUID | None
    top_factors: list[FactorView]
    explanation: dict[str, Any] | None


class RiskHistoryView(msgspec.Struct, kw_only=True):
    score_id: uuid.UUID
    scored_at: datetime
    score: float
    band: str
    model_version: str
    feature_hash: str
    credibility: float
    trip_id: uuid.UUID | None


class PolicyView(msgspec.Struct, kw_only=True):
    policy_id: uuid.UUID
    driver_id: str
    policy_number: str
    status: str
    base_premium: Decimal
    current_premium: Decimal
    per_km_rate: Decimal
    currency: str
    effective_date: date
    expiration_date: date
    last_score: Decimal | None
    last_band: str | None
    vehicle_use: str = "personal"  # cached views from before migration 0016 have none
    created_at: datetime
    updated_at: datetime


class PoliciesView(msgspec.Struct, kw_only=True):
    driver_id: str
    items: list[PolicyView]


class QuoteView(msgspec.Struct, kw_only=True):
    driver_id: str
    policy_id: uuid.UUID | None
    score: float
    score_source: str  # "scored" | "prior"
    band: str
    annual_km: float
    currency: str
    base_premium: Decimal
    band_premium: Decimal
    per_km_premium: Decimal
    previous_premium: Decimal | None
    premium: Decimal
    cap_applied: bool
    cap_direction: str | None
    clamp_applied: bool
    better_band: str | None
    score_drop_to_better_band: float | None
    premium_at_better_band: Decimal | None
    saving_at_better_band: Decimal | None
    worse_band: str | None
    score_rise_to_worse_band: float | None
    premium_at_worse_band: Decimal | None


class EpisodeView(msgspec.Struct, kw_only=True):
    event_id: uuid.UUID
    type: str
    grade: str | None  # "low" | "medium" | "high"
    start_time: datetime
    end_time: datetime
    duration_s: float
    peak_value: float | None
    peak_unit: str | None
    lat: float | None
    lon: float | None
    speed_limit_kmh: float | None
    band: str | None


class RouteGeometryView(msgspec.Struct, kw_only=True):
    type: str = "LineString"
    coordinates: list[tuple[float, float]]  # [lon, lat]


class RoutePropertiesView(msgspec.Struct, kw_only=True):
    trip_id: uuid.UUID
    driver_id: str
    start_time: datetime
    end_time: datetime
    points_in: int
    points_out: int
    points_skipped: int
    tolerance_m: float
    max_points: int
    truncated: bool
    positions_withheld: bool = False


class RouteView(msgspec.Struct, kw_only=True):
    type: str = "Feature"
    geometry: RouteGeometryView | None
    properties: RoutePropertiesView


_ENCODER = msgspec.json.Encoder()
encode = _ENCODER.encode
decode_score = msgspec.json.Decoder(RiskScoreView).decode


def fields_of(view: type[msgspec.Struct]) -> tuple[str, ...]:
    return view.__struct_fields__
