"""The inbound telematics reading (DESIGN.md §4): the wire shape and the validated shape.

Pure: no I/O, no clock. Validation lives in `domain.validation` and turns a `WireReading` (what a
device sent, loosely typed) into a `Reading` (strict, normalized: epoch milliseconds, UUID id).
"""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import Any

import msgspec


class ReadingType(StrEnum):
    """Kinds of device reading. Derived facts (harsh braking, speeding…) are domain events, not these."""

    POSITION = "position"
    IGNITION_ON = "ignition_on"
    IGNITION_OFF = "ignition_off"
    PHONE_USE = "phone_use"
    CRASH = "crash"


class WireReading(msgspec.Struct, forbid_unknown_fields=False, kw_only=True):
    """What arrives on Kafka or at the API before validation. `ts` is RFC 3339 text or epoch ms."""

    event_id: str
    driver_id: str
    ts: str | int
    type: str
    lat: float
    lon: float
    speed_kmh: float | None = None
    accel_ms2: float | None = None
    heading: float | None = None
    speed_limit_kmh: float | None = None
    lateral_accel_ms2: float | None = None
    data: dict[str, Any] | None = None


class Reading(msgspec.Struct, frozen=True, kw_only=True, array_like=True):
    """A validated reading. Units in names; `ts_ms` is device time in epoch milliseconds (UTC).

    `speed_kmh`, `accel_ms2` and `heading` are None when the device did not know them (docs/DOMAIN.md §1: the
    sentinels accepted); the detectors then derive what they can from positions and times.
    `lateral_accel_ms2` is None when the device gives none (cornering is then derived from heading
    rate × speed). `speed_kmh`, `accel_ms2` and `heading` are None when the device did not know them
    (a fix without speed or course, a phone without an accelerometer stream): the detectors derive
    them from neighbouring samples (docs/DOMAIN.md §4). `array_like` keeps the msgpack form compact for
    snapshots and Ray calls.
    """

    event_id: uuid.UUID
    driver_id: str
    ts_ms: int
    type: ReadingType
    lat: float | None  # None: stripped (a mileage_only driver's reading, docs/PRIVACY.md §3); never from a device
    lon: float | None
    speed_kmh: float | None
    accel_ms2: float | None
    heading: float | None
    speed_limit_kmh: float | None = None
    lateral_accel_ms2: float | None = None
    data: dict[str, Any] | None = None
