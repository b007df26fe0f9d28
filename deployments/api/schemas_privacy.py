"""Request/response models of the privacy routes (docs/PRIVACY.md, docs/API.md)."""

from __future__ import annotations

import uuid
from typing import Literal

from pydantic import Field

from deployments.api.schemas import Model, Text
from domain.privacy import PrivacyState


class PrivacyIn(Model):
    mode: Literal["full", "private_trips", "mileage_only"] = Field(description="full | private_trips | mileage_only")


class PrivacyOut(Model):
    driver_id: str
    mode: Literal["full", "private_trips", "mileage_only"]
    private_trips: list[uuid.UUID] = Field(description="trips whose route and positions are withheld")
    erased: bool
    version: int = Field(description="privacy events recorded for the driver (the stream's head)")


class ErasureIn(Model):
    reason: Text = Field(description="why (the request's reference); recorded in the driver_erased event")


class ErasureOut(PrivacyOut):
    already_erased: bool = Field(description="true when an earlier request erased the driver (nothing done now)")
    readings_deleted: int
    events_scrubbed: int
    snapshots_deleted: int


def privacy_out(state: PrivacyState) -> PrivacyOut:
    return PrivacyOut(driver_id=state.driver_id, mode=state.mode, private_trips=sorted(state.private_trips, key=str),
                      erased=state.erased, version=state.version)
