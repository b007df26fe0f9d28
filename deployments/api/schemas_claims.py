"""Request and response models of claims (first notice of loss): the admin's list and detail, a driver's own,
and the driver's confirmation."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from deployments.api.schemas import Model

ClaimStatus = Literal["open", "confirmed", "rejected"]
Note = Annotated[str, StringConstraints(max_length=2000, pattern=r"^[^\x00]*$")]


class ClaimReadingOut(Model):
    """A reading around the impact; `offset_s` < 0 before it. Unknown values (and positions a driver's privacy
    mode does not keep) are null."""

    ts_ms: int
    offset_s: float
    lat: float | None
    lon: float | None
    speed_kmh: float | None
    accel_ms2: float | None
    heading: float | None


class ClaimOut(Model):
    claim_id: uuid.UUID
    crash_event_id: uuid.UUID
    driver_id: str
    trip_id: uuid.UUID | None
    occurred_at: datetime
    trigger: str
    peak_g: float
    lat: float | None = Field(description="where the crash happened; null when unknown")
    lon: float | None
    speed_kmh: float | None = Field(description="speed at the impact; null when the device did not know it")
    status: ClaimStatus
    opened_at: datetime
    decided_at: datetime | None
    decided_by: uuid.UUID | None
    note: str | None
    positions_withheld: bool = Field(False, description="true when the driver's privacy mode withholds this trip's "
                                                        "positions: location and the readings' positions are null")


class ClaimDetailOut(ClaimOut):
    readings: list[ClaimReadingOut] = Field(description="the readings of the 30 s before and after, in time order")


class ClaimConfirmation(Model):
    """The driver's answer: `confirmed` true (it was a crash: the claim goes on) or false (no loss)."""

    confirmed: bool
    note: Note | None = None
