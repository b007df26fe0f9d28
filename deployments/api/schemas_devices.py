"""Request and response models of `/api/v1/admin/devices` (docs/SECURITY.md §6). `key` appears only in the answers
of register and rotate: it is never stored, so it cannot be shown again."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import ConfigDict, StringConstraints

from deployments.api.schemas import DriverId, Model

Label = Annotated[str, StringConstraints(max_length=200, pattern=r"^[^\x00]*$")]


class DeviceCreate(Model):
    model_config = ConfigDict(extra="forbid")

    driver_id: DriverId
    label: Label = ""


class DeviceOut(Model):
    device_id: uuid.UUID
    driver_id: str
    label: str
    status: Literal["active", "revoked"]
    created_at: datetime
    key_rotated_at: datetime | None
    revoked_at: datetime | None
    last_seen_at: datetime | None  # the last authenticated ingest, to within device_last_seen_interval_s

    @classmethod
    def of(cls, row) -> DeviceOut:
        return cls.model_validate({**row, "status": "revoked" if row["revoked_at"] else "active"})


class DeviceKeyOut(DeviceOut):
    key: str  # send as `X-Device-Key` with POST /api/v1/telematics/events; shown this once

    @classmethod
    def issued(cls, row, key: str) -> DeviceKeyOut:
        return cls.model_validate({**row, "status": "active", "key": key})
