"""Request and response models of the driver-facing API (OpenAPI at /docs). Units in field names.

Strings that reach PostgreSQL forbid NUL (text columns cannot hold it) and are length-bounded, so bad
input is a 422 with a message rather than a database error.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

T = TypeVar("T")

DRIVER_ID_PATTERN = r"^[A-Za-z0-9_.\-]{1,64}$"
DriverId = Annotated[str, StringConstraints(pattern=DRIVER_ID_PATTERN)]
Text = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=r"^[^\x00]+$")]
PAGE_SIZE_MAX = 100
PAGE_MAX = 1_000_000  # keeps (page - 1) × page_size far inside bigint


class Model(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class LoginRequest(Model):
    username: Annotated[str, StringConstraints(min_length=1, max_length=150, pattern=r"^[^\x00]+$")]
    password: Annotated[str, StringConstraints(min_length=1, max_length=1024)]


class TokenResponse(Model):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in_s: int


class Page(Model, Generic[T]):
    """One page: `page` ≥ 1, `page_size` 1..100, `total` items across all pages."""

    items: list[T]
    page: int
    page_size: int
    total: int


def page_offset(page: int, page_size: int) -> int:
    """Rows to skip for a 1-based page."""
    if page < 1 or page_size < 1:
        raise ValueError("page and page_size must be ≥ 1")
    return (page - 1) * page_size


class DriverOut(Model):
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


class GradeCountsOut(Model):
    low: int = Field(description="episodes graded low: recorded, not counted as harsh")
    medium: int
    high: int


class HarshByGradeOut(Model):
    """Harsh episodes of the trip per kind and grade (docs/DOMAIN.md §4). `harsh_*_count` = medium + high."""

    braking: GradeCountsOut
    acceleration: GradeCountsOut
    cornering: GradeCountsOut


class TripOut(Model):
    trip_id: uuid.UUID
    driver_id: str
    start_time: datetime
    end_time: datetime
    distance_m: float
    duration_s: float
    avg_speed_kmh: float
    max_speed_kmh: float
    harsh_braking_count: int = Field(description="harsh braking episodes graded medium or high")
    harsh_acceleration_count: int = Field(description="harsh acceleration episodes graded medium or high")
    harsh_cornering_count: int = Field(description="harsh cornering episodes graded medium or high")
    speeding_moderate_s: float
    speeding_severe_s: float
    night_s: float
    phone_use_moving_s: float
    idle_s: float
    crash_count: int
    end_reason: str
    harsh_by_grade: HarshByGradeOut = Field(
        description="episodes per kind and grade; the harsh_*_count fields count medium and high only"
    )
    quality_flags: list[str] = Field(
        default_factory=list,
        description="what the data says about itself, e.g. ignition_off_while_moving: the recording ended at speed",
    )
    private: bool = Field(default=False, description="the driver marked this trip private (docs/PRIVACY.md)")
    positions_withheld: bool = Field(
        default=False,
        description="its route and positions are not served or streamed (a private trip, the mileage_only mode or an"
                    " erased driver); its summary still counts in the score",
    )


class FactorOut(Model):
    name: str
    contribution: float = Field(description="change in log claim rate vs the portfolio average; + is riskier")


class RiskScoreOut(Model):
    """The driver's current score: the latest scoring, or the portfolio prior (credibility 0) before any."""

    driver_id: str
    source: Literal["scored", "prior"]
    score: float = Field(description="0–100, lower is safer")
    band: str
    model_version: str
    feature_hash: str
    credibility: float = Field(description="weight of the driver's own data vs the prior, 0..1")
    scored_at: datetime | None
    trip_id: uuid.UUID | None
    top_factors: list[FactorOut]
    explanation: dict[str, Any] | None


class RiskHistoryItem(Model):
    score_id: uuid.UUID
    scored_at: datetime
    score: float
    band: str
    model_version: str
    feature_hash: str
    credibility: float
    trip_id: uuid.UUID | None


class PolicyOut(Model):
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
    vehicle_use: str = "personal"  # a default: cached policies from before migration 0016 have none
    created_at: datetime
    updated_at: datetime


class PoliciesOut(Model):
    driver_id: str
    items: list[PolicyOut]


class QuoteOut(Model):
    """A premium priced from the current score (domain.pricing), with the forecast to the neighbour bands."""

    driver_id: str
    policy_id: uuid.UUID | None
    score: float
    score_source: Literal["scored", "prior"]
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


class EpisodeOut(Model):
    """One episode of a trip (domain.trip_episodes), from the detectors' stored events."""

    event_id: uuid.UUID
    type: Literal["harsh_braking", "harsh_acceleration", "harsh_cornering", "speeding", "phone_use", "crash"]
    grade: Literal["low", "medium", "high"] | None = Field(
        description="the event's own grade when it has one (harsh events), else null")
    start_time: datetime
    end_time: datetime = Field(description="a crash is an instant: its trigger")
    duration_s: float
    peak_value: float | None = Field(
        description="strongest magnitude in peak_unit: harsh m/s², speeding the speed driven at the largest excess, "
                    "crash g; null for phone use")
    peak_unit: Literal["m/s²", "km/h", "g"] | None
    lat: float | None = Field(description="where it began (a crash: its trigger); null when unknown")
    lon: float | None
    speed_limit_kmh: float | None = Field(description="speeding: the limit where the excess was largest")
    band: Literal["moderate", "severe"] | None = Field(description="speeding: the worst band reached")


class RouteGeometryOut(Model):
    type: Literal["LineString"]
    coordinates: list[tuple[float, float]] = Field(description="[lon, lat] positions in time order (GeoJSON order)")


class RoutePropertiesOut(Model):
    trip_id: uuid.UUID
    driver_id: str
    start_time: datetime
    end_time: datetime
    points_in: int = Field(description="readings with a known position in the trip's span")
    points_out: int = Field(description="positions in the simplified line")
    points_skipped: int = Field(description="readings without a known position, left out")
    tolerance_m: float = Field(description="Douglas–Peucker tolerance applied (raised to keep ≤ max_points)")
    max_points: int
    truncated: bool = Field(description="the trip had more readings than are read for one route")
    positions_withheld: bool = Field(default=False, description="the driver's consent withholds this route: no"
                                                                " geometry (docs/PRIVACY.md)")


class TripRouteOut(Model):
    """A GeoJSON Feature (RFC 7946): the trip's readings simplified to a LineString; geometry null with fewer
    than two positions."""

    type: Literal["Feature"]
    geometry: RouteGeometryOut | None
    properties: RoutePropertiesOut


class ErrorOut(Model):
    detail: Any = Field(description="what was wrong, in words (a list of field errors for 422)")
