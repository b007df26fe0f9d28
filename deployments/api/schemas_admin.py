"""Request and response models of the admin API: drivers, policies, users CRUD, dashboard, analytics.

Bounds mirror the database (numeric(12,2) premiums, numeric(10,4) per-km rates, ISO currency, ordered
dates), so a bad value is a 422 naming the field, never a database error.
"""

from __future__ import annotations

import uuid
import zoneinfo
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import ConfigDict, Field, StringConstraints, field_validator, model_validator

from deployments.api.schemas import DriverId, Model, Text
from domain.fairness import VEHICLE_USES

Email = Annotated[str, StringConstraints(max_length=254, pattern=r"^[^@\s\x00]+@[^@\s\x00]+$")]
Timezone = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_+\-/]+$")]
Premium = Annotated[Decimal, Field(gt=0, max_digits=12, decimal_places=2)]
PerKmRate = Annotated[Decimal, Field(ge=0, max_digits=10, decimal_places=4)]
Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
PolicyStatus = Literal["pending", "active", "suspended", "cancelled", "expired"]
VehicleUse = Literal[VEHICLE_USES]  # migration 0016's CHECK list
Role = Literal["driver", "admin"]
Username = Annotated[str, StringConstraints(min_length=1, max_length=150, pattern=r"^[A-Za-z0-9_.@\-]+$")]
Password = Annotated[str, StringConstraints(min_length=8, max_length=1024)]
BirthDate = Annotated[date, Field(ge=date(1900, 1, 1), le=date(2100, 1, 1))]
PolicyDate = Annotated[date, Field(ge=date(1970, 1, 1), le=date(2200, 1, 1))]


def _known_timezone(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown IANA time zone {value!r}") from None
    return value


class DriverFieldsBase(Model):
    model_config = ConfigDict(from_attributes=True, extra="forbid")

    @field_validator("timezone", check_fields=False)
    @classmethod
    def _timezone(cls, value: str | None) -> str | None:
        return _known_timezone(value)


class DriverCreate(DriverFieldsBase):
    driver_id: DriverId
    first_name: Text
    last_name: Text
    email: Email
    phone: Text | None = None
    license_number: Text | None = None
    date_of_birth: BirthDate | None = None
    timezone: Timezone = "UTC"
    is_active: bool = True


def _no_nulls(values: dict, nullable: frozenset[str]) -> None:
    """A PATCH may omit a field, but may set to null only the columns that allow it."""
    bad = sorted(k for k, v in values.items() if v is None and k not in nullable)
    if bad:
        raise ValueError(f"{', '.join(bad)} cannot be null (omit a field to leave it unchanged)")


class DriverPatch(DriverFieldsBase):
    first_name: Text | None = None
    last_name: Text | None = None
    email: Email | None = None
    phone: Text | None = None
    license_number: Text | None = None
    date_of_birth: BirthDate | None = None
    timezone: Timezone | None = None
    is_active: bool | None = None

    @model_validator(mode="after")
    def _nullable_only(self) -> DriverPatch:
        _no_nulls(self.model_dump(exclude_unset=True), frozenset({"phone", "license_number", "date_of_birth"}))
        return self


class PolicyCreate(Model):
    model_config = ConfigDict(from_attributes=True, extra="forbid")

    driver_id: DriverId
    policy_number: Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_\-]+$")]
    status: PolicyStatus = "active"
    base_premium: Premium
    current_premium: Premium | None = None
    per_km_rate: PerKmRate = Decimal("0.02")
    currency: Currency = "EUR"
    effective_date: PolicyDate
    expiration_date: PolicyDate
    vehicle_use: VehicleUse = "personal"

    @model_validator(mode="after")
    def _dates_ordered(self) -> PolicyCreate:
        if self.expiration_date <= self.effective_date:
            raise ValueError("expiration_date must be after effective_date")
        return self


class PolicyPatch(Model):
    model_config = ConfigDict(from_attributes=True, extra="forbid")

    status: PolicyStatus | None = None
    base_premium: Premium | None = None
    current_premium: Premium | None = None
    per_km_rate: PerKmRate | None = None
    currency: Currency | None = None
    effective_date: PolicyDate | None = None
    expiration_date: PolicyDate | None = None
    vehicle_use: VehicleUse | None = None

    @model_validator(mode="after")
    def _nullable_only(self) -> PolicyPatch:
        _no_nulls(self.model_dump(exclude_unset=True), frozenset())
        return self


class UserCreate(Model):
    model_config = ConfigDict(from_attributes=True, extra="forbid")

    username: Username
    password: Password
    role: Role = "driver"
    driver_id: DriverId | None = None

    @model_validator(mode="after")
    def _driver_needs_profile(self) -> UserCreate:
        if self.role == "driver" and self.driver_id is None:
            raise ValueError("a driver login needs a driver_id")
        return self


class UserPatch(Model):
    model_config = ConfigDict(from_attributes=True, extra="forbid")

    password: Password | None = None
    role: Role | None = None
    driver_id: DriverId | None = None
    is_active: bool | None = None

    @model_validator(mode="after")
    def _nullable_only(self) -> UserPatch:
        _no_nulls(self.model_dump(exclude_unset=True), frozenset({"driver_id"}))
        return self


class UserOut(Model):
    """A login as admins see it: never the password hash."""

    user_id: uuid.UUID
    username: str
    role: str
    driver_id: str | None
    is_active: bool
    created_at: datetime
    last_login_at: datetime | None


class DashboardOut(Model):
    drivers: int
    active_drivers: int
    policies_by_status: dict[str, int]
    trips: int
    average_risk_score: float | None = Field(description="mean last score of active policies")
    events_last_hour: int
    as_of: datetime


class BandCount(Model):
    band: str
    drivers: int
    average_score: float


class RiskDistributionOut(Model):
    items: list[BandCount]


class TripsDay(Model):
    day: date
    trips: int
    drivers: int
    distance_km: float
    harsh_events: int


class TripsDailyOut(Model):
    days: int
    items: list[TripsDay]


class PsiBin(Model):
    lower: float | None = Field(description="inclusive lower edge; null for the first bin")
    expected: float = Field(description="share of the reference (training) population")
    actual: float = Field(description="share of the drivers scored in the window")


class PsiOut(Model):
    name: str
    psi: float | None = Field(description="population stability index; null without a reference or without drivers")
    drift: bool = Field(description="psi above DRIFT_PSI_ALERT")
    bins: list[PsiBin]
    note: str | None = None


class DriftOut(Model):
    days: int
    drivers: int
    threshold: float
    score: PsiOut
    model_version: str | None = Field(description="the model in force: the version most latest scores carry; its "
                                      "artifact's training deciles are the inputs' reference")
    inputs_drivers: int = Field(description="drivers whose inputs were recomputed from their trips and matched the "
                                "feature hash their score recorded; the inputs' PSI is over them")
    inputs: list[PsiOut] = Field(description="one per model input (empty when the artifact keeps no reference: "
                                 "see note)")
    note: str | None = None


class CohortOut(Model):
    dimension: str
    cohort: str
    drivers: int
    mean_score: float | None
    mean_premium: float | None
    score_ratio: float | None
    premium_ratio: float | None
    flagged: bool = Field(description="a ratio outside [COHORT_RATIO_LOW, COHORT_RATIO_HIGH]")


class CohortsOut(Model):
    days: int
    drivers: int
    ratio_band: tuple[float, float]
    items: list[CohortOut]


class CalibrationOut(Model):
    decile: int
    drivers: int
    mean_score: float
    expected_claims: float
    observed_claims: int
    observed_to_expected: float | None


class CalibrationListOut(Model):
    days: int
    drivers: int
    claims_source: str
    items: list[CalibrationOut]
