"""Batches → `Reading`s and → wire JSON (what a device would POST / produce into Kafka). Pure.

Event ids are UUIDv7-shaped and deterministic: the first 48 bits are `ts_ms` (so ids are time
ordered and index inserts stay local), then version 7, then 74 bits from the row's `id_hash`
(a hash of seed, driver, trip and sample). The same batch always gives the same ids and bytes.
"""

from __future__ import annotations

import math
import uuid

import msgspec
import numpy as np

from domain.readings import Reading, ReadingType
from domain.simulator.profiles import driver_id
from domain.simulator.trips import TYPE_NAMES

_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
_DASH_AFTER = (8, 12, 16, 20)  # hex digits before each dash of 8-4-4-4-12
_MASK62 = np.uint64((1 << 62) - 1)


def event_id_words(batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """High and low 64-bit words of each row's event UUID (ts_ms | ver 7 | hash bits | variant)."""
    h = batch["id_hash"]
    hi = (batch["ts_ms"].astype(np.uint64) << np.uint64(16)) | np.uint64(0x7000) | (h >> np.uint64(52))
    lo = np.uint64(0x8000000000000000) | (h & _MASK62)
    return hi, lo


def event_id_strings(batch: np.ndarray) -> list[str]:
    """Canonical 36-char UUID strings, vectorized (no per-row `uuid.UUID`)."""
    n = len(batch)
    hi, lo = event_id_words(batch)
    raw = np.empty((n, 16), dtype=np.uint8)
    raw[:, :8] = hi.astype(">u8").view(np.uint8).reshape(n, 8)
    raw[:, 8:] = lo.astype(">u8").view(np.uint8).reshape(n, 8)
    nib = np.empty((n, 32), dtype=np.uint8)
    nib[:, 0::2] = _HEX[raw >> 4]
    nib[:, 1::2] = _HEX[raw & 0x0F]
    text = np.full((n, 36), ord("-"), dtype=np.uint8)
    src = 0
    dst = 0
    for stop in (*_DASH_AFTER, 32):
        width = stop - src
        text[:, dst : dst + width] = nib[:, src:stop]
        src, dst = stop, dst + width + 1
    return text.view("S36").ravel().astype("U36").tolist()


def _driver_ids(batch: np.ndarray) -> list[str]:
    uniq, inv = np.unique(batch["driver_no"], return_inverse=True)
    names = np.array([driver_id(int(x)) for x in uniq.tolist()], dtype=object)
    return names[inv].tolist()


def _optional(col: np.ndarray, missing: object = None) -> list:
    """Column values with NaN replaced by `missing` (fast paths for none / all missing)."""
    nan = np.isnan(col)
    if not nan.any():
        return col.tolist()
    if nan.all():
        return [missing] * len(col)
    return [missing if math.isnan(x) else x for x in col.tolist()]


_READING_TYPES = tuple(ReadingType(name) for name in TYPE_NAMES)


def to_readings(batch: np.ndarray) -> list[Reading]:
    """Validated-shape `Reading`s of a READING_DTYPE batch, same order and values as the wire JSON."""
    hi, lo = event_id_words(batch)
    types = [_READING_TYPES[t] for t in batch["type"].tolist()]
    rows = zip(
        hi.tolist(), lo.tolist(), _driver_ids(batch), batch["ts_ms"].tolist(), types,
        batch["lat"].tolist(), batch["lon"].tolist(), _optional(batch["speed_kmh"]), _optional(batch["accel_ms2"]),
        _optional(batch["heading"]), _optional(batch["speed_limit_kmh"]), _optional(batch["lateral_accel_ms2"]),
        strict=True,
    )
    return [
        Reading(
            event_id=uuid.UUID(int=(h << 64) | low), driver_id=d, ts_ms=ts, type=ty, lat=la, lon=lo_,
            speed_kmh=sp, accel_ms2=ac, heading=hd, speed_limit_kmh=lim, lateral_accel_ms2=lat_a,
        )
        for h, low, d, ts, ty, la, lo_, sp, ac, hd, lim, lat_a in rows
    ]


class _Wire(msgspec.Struct, omit_defaults=True, gc=False):
    """WireReading's JSON shape: `speed_limit_kmh` always present (null = none), lateral only if known;
    speed, acceleration and heading are null when the device did not know them (realism mode only)."""

    event_id: str
    driver_id: str
    ts: int
    type: str
    lat: float
    lon: float
    speed_kmh: float | None
    accel_ms2: float | None
    heading: float | None
    speed_limit_kmh: float | None
    lateral_accel_ms2: float | msgspec.UnsetType = msgspec.UNSET


_ENCODER = msgspec.json.Encoder()


def to_wire_json(batch: np.ndarray) -> list[bytes]:
    """One JSON object per row, matching `domain.readings.WireReading` (ts = epoch ms)."""
    lateral = _optional(batch["lateral_accel_ms2"], msgspec.UNSET)
    rows = zip(
        event_id_strings(batch), _driver_ids(batch), batch["ts_ms"].tolist(),
        [TYPE_NAMES[t] for t in batch["type"].tolist()],
        batch["lat"].tolist(), batch["lon"].tolist(), _optional(batch["speed_kmh"]), _optional(batch["accel_ms2"]),
        _optional(batch["heading"]), _optional(batch["speed_limit_kmh"]), lateral,
        strict=True,
    )
    encode = _ENCODER.encode
    return [encode(_Wire(*row)) for row in rows]
