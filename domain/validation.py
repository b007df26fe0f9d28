"""Strict validation of inbound readings, with a typed reason for every refusal (DESIGN.md §2.6, §4).

Pure: no I/O; the current time is the `now_ms` argument. `validate` is the authority on what is valid.
`decode_reading` / `decode_batch` first try a msgspec decoder whose constraints accept exactly the same
inputs (fast path); anything it refuses goes through the slow path, which finds the first failing
field in a fixed order: event_id, driver_id, type, ts, lat, lon, speed_kmh, accel_ms2, heading,
speed_limit_kmh, lateral_accel_ms2, data. `encode_reading` is the one wire encoder (producers, simulator).
"""

from __future__ import annotations

import json
import re
import struct
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any

import msgspec

from domain.partition_calendar import retention_start_ms
from domain.readings import Reading, ReadingType, WireReading
from domain.rules import ValidationRules


class RejectReason(StrEnum):
    """Why a reading was refused; the DLQ and the API's 4xx body carry this value."""

    INVALID_JSON = "invalid_json"
    NOT_AN_OBJECT = "not_an_object"
    MISSING_FIELD = "missing_field"
    WRONG_TYPE = "wrong_type"
    UNKNOWN_EVENT_TYPE = "unknown_event_type"
    BAD_EVENT_ID = "bad_event_id"
    BAD_DRIVER_ID = "bad_driver_id"
    LAT_OUT_OF_RANGE = "lat_out_of_range"
    LON_OUT_OF_RANGE = "lon_out_of_range"
    SPEED_OUT_OF_RANGE = "speed_out_of_range"
    ACCEL_OUT_OF_RANGE = "accel_out_of_range"
    HEADING_OUT_OF_RANGE = "heading_out_of_range"
    SPEED_LIMIT_OUT_OF_RANGE = "speed_limit_out_of_range"
    TS_UNPARSEABLE = "ts_unparseable"
    TS_IN_FUTURE = "ts_in_future"
    TS_BEFORE_RETENTION = "ts_before_retention"
    TS_BACKDATED = "ts_backdated"  # older than the ingest route's window (ValidationRules.max_backdate_s)
    PAYLOAD_TOO_LARGE = "payload_too_large"


class Rejection(msgspec.Struct, frozen=True, kw_only=True):
    """A refused reading: `field` names the culprit (None for whole-payload reasons); ids when readable."""

    reason: RejectReason
    field: str | None
    message: str
    event_id: str | None = None
    driver_id: str | None = None


# --- ranges (inclusive) ------------------------------------------------------------------------------
LAT_RANGE = (-90.0, 90.0)
LON_RANGE = (-180.0, 180.0)
SPEED_RANGE_KMH = (0.0, 300.0)
ACCEL_RANGE_MPS2 = (-50.0, 50.0)
HEADING_RANGE_DEG = (0.0, 360.0)
SPEED_LIMIT_MAX_KMH = 300.0  # a limit must be > 0 and ≤ 300
DRIVER_ID_PATTERN = r"^[A-Za-z0-9_.-]{1,64}\Z"  # \Z, not $: "$" would accept a trailing newline
_DRIVER_ID_RE = re.compile(DRIVER_ID_PATTERN)
_MS_PER_DAY = 86_400_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ID_ECHO_MAX = 100  # ids echoed in a Rejection are truncated so a hostile payload cannot bloat the DLQ

_AwareDatetime = Annotated[datetime, msgspec.Meta(tz=True)]
_DriverId = Annotated[str, msgspec.Meta(pattern=DRIVER_ID_PATTERN)]
_Lat = Annotated[float, msgspec.Meta(ge=LAT_RANGE[0], le=LAT_RANGE[1])]
_Lon = Annotated[float, msgspec.Meta(ge=LON_RANGE[0], le=LON_RANGE[1])]
_Speed = Annotated[float, msgspec.Meta(ge=SPEED_RANGE_KMH[0], le=SPEED_RANGE_KMH[1])]
_Accel = Annotated[float, msgspec.Meta(ge=ACCEL_RANGE_MPS2[0], le=ACCEL_RANGE_MPS2[1])]
_Heading = Annotated[float, msgspec.Meta(ge=HEADING_RANGE_DEG[0], le=HEADING_RANGE_DEG[1])]
_SpeedLimit = Annotated[float, msgspec.Meta(gt=0.0, le=SPEED_LIMIT_MAX_KMH)]


class _FastWire(msgspec.Struct, forbid_unknown_fields=False):
    """Fast-path decoder: its constraints mirror the slow path exactly (a property test checks)."""

    event_id: uuid.UUID
    driver_id: _DriverId
    ts: _AwareDatetime | int
    type: ReadingType
    lat: _Lat
    lon: _Lon
    speed_kmh: _Speed | None = None
    accel_ms2: _Accel | None = None
    heading: _Heading | None = None
    speed_limit_kmh: _SpeedLimit | None = None
    lateral_accel_ms2: _Accel | None = None
    data: dict[str, Any] | None = None


_FAST_DECODER = msgspec.json.Decoder(_FastWire)
_FAST_ERRORS = (msgspec.ValidationError, msgspec.DecodeError, RecursionError)
_ANY_DECODER = msgspec.json.Decoder()


class _WireOut(msgspec.Struct, omit_defaults=True):
    event_id: uuid.UUID
    driver_id: str
    ts: int
    type: ReadingType
    lat: float
    lon: float
    speed_kmh: float | None = None
    accel_ms2: float | None = None
    heading: float | None = None
    speed_limit_kmh: float | None = None
    lateral_accel_ms2: float | None = None
    data: dict[str, Any] | None = None


_WIRE_ENCODER = msgspec.json.Encoder()


def encode_reading(reading: Reading) -> bytes:
    """Wire JSON of a reading (ts as epoch ms, optional fields omitted when None). Round-trips via decode."""
    return _WIRE_ENCODER.encode(
        _WireOut(
            reading.event_id,
            reading.driver_id,
            reading.ts_ms,
            reading.type,
            reading.lat,
            reading.lon,
            reading.speed_kmh,
            reading.accel_ms2,
            reading.heading,
            reading.speed_limit_kmh,
            reading.lateral_accel_ms2,
            reading.data,
        )
    )


def validate(wire: WireReading, now_ms: int, rules: ValidationRules) -> Reading | Rejection:
    """Check a loosely typed reading against every rule; return the normalized `Reading` or the first failure."""
    return _validate_mapping(msgspec.structs.asdict(wire), now_ms, rules)


def decode_reading(raw: bytes, now_ms: int, rules: ValidationRules) -> Reading | Rejection:
    """Decode and validate one JSON payload (a Kafka message value). Oversized payloads are not parsed."""
    if len(raw) > rules.max_payload_bytes:
        return _too_large(len(raw), rules)
    try:
        reading = _finish(_FAST_DECODER.decode(raw), now_ms, rules)
    except _FAST_ERRORS:
        reading = None
    return _slow_decode(raw, now_ms, rules) if reading is None else reading


def decode_batch(
    raws: Sequence[bytes], now_ms: int, rules: ValidationRules
) -> tuple[list[Reading], list[tuple[int, Rejection]]]:
    """Decode many payloads: the valid readings (input order) and each rejection with its input index."""
    readings: list[Reading] = []
    rejects: list[tuple[int, Rejection]] = []
    max_bytes = rules.max_payload_bytes
    decode = _FAST_DECODER.decode
    errors = _FAST_ERRORS
    for i, raw in enumerate(raws):
        if len(raw) > max_bytes:
            rejects.append((i, _too_large(len(raw), rules)))
            continue
        try:
            reading = _finish(decode(raw), now_ms, rules)
        except errors:
            reading = None
        if reading is not None:
            readings.append(reading)
            continue
        result = _slow_decode(raw, now_ms, rules)
        if type(result) is Reading:  # only if the two paths disagreed; the slow path is the authority
            readings.append(result)
        else:
            rejects.append((i, result))  # type: ignore[arg-type]
    return readings, rejects


# --- fast path ---------------------------------------------------------------------------------------


def _finish(w: _FastWire, now_ms: int, rules: ValidationRules) -> Reading | None:
    """The Reading of a decoded payload, or None when its ts is outside the accepted window (the
    caller then lets the slow path write the rejection, so every rejection has one author)."""
    ts = w.ts
    ts_ms = ts if type(ts) is int else _datetime_to_ms(ts)  # type: ignore[arg-type]
    if _check_ts_window(ts_ms, now_ms, rules) is not None:
        return None
    return Reading(
        event_id=w.event_id,
        driver_id=w.driver_id,
        ts_ms=ts_ms,
        type=w.type,
        lat=w.lat,
        lon=w.lon,
        speed_kmh=None if w.speed_kmh is None else f32(w.speed_kmh),
        accel_ms2=None if w.accel_ms2 is None else f32(w.accel_ms2),
        heading=None if w.heading is None else f32(w.heading),
        speed_limit_kmh=None if w.speed_limit_kmh is None else f32(w.speed_limit_kmh),
        lateral_accel_ms2=None if w.lateral_accel_ms2 is None else f32(w.lateral_accel_ms2),
        data=w.data,
    )


_F32 = struct.Struct("<f")


def f32(value: float) -> float:
    """The nearest float32, as a float. Speed, acceleration and heading are stored as PostgreSQL `real`;
    canonicalizing them here makes a reading folded live bit-identical to the same reading replayed
    from storage (activation), so events do not depend on which path a reading took. lat/lon stay
    float64 (stored as double precision): float32 would cost ~1 m of position."""
    return _F32.unpack(_F32.pack(value))[0]


def _datetime_to_ms(dt: datetime) -> int:
    """Exact epoch milliseconds (floor) of an aware datetime, without float rounding."""
    delta = dt - _EPOCH
    return delta.days * _MS_PER_DAY + delta.seconds * 1000 + delta.microseconds // 1000


def _check_ts_window(ts_ms: int, now_ms: int, rules: ValidationRules) -> tuple[RejectReason, str] | None:
    if ts_ms > now_ms + rules.max_future_skew_s * 1000:
        return (
            RejectReason.TS_IN_FUTURE,
            f"ts is {ts_ms - now_ms} ms ahead of now; at most {rules.max_future_skew_s} s allowed",
        )
    oldest_ms = retention_start_ms(now_ms, rules.retention_months)
    if ts_ms < oldest_ms:
        return (
            RejectReason.TS_BEFORE_RETENTION,
            f"ts is before {_iso_ms(oldest_ms)}, the start of the oldest month the {rules.retention_months}-month "
            "retention keeps",
        )
    if rules.max_backdate_s is not None and ts_ms < now_ms - rules.max_backdate_s * 1000:
        return (
            RejectReason.TS_BACKDATED,
            f"ts is {(now_ms - ts_ms) // 1000} s before now; readings older than {rules.max_backdate_s} s are "
            "accepted only through the admin import (POST /api/v1/admin/telematics/import)",
        )
    return None


def _iso_ms(epoch_ms: int) -> str:
    return (_EPOCH + timedelta(milliseconds=epoch_ms)).isoformat().replace("+00:00", "Z")


def _too_large(size: int, rules: ValidationRules) -> Rejection:
    return Rejection(
        reason=RejectReason.PAYLOAD_TOO_LARGE,
        field=None,
        message=f"payload is {size} bytes; at most {rules.max_payload_bytes} allowed",
    )


# --- slow path: the authority ----------------------------------------------------------------------


def _slow_decode(raw: bytes, now_ms: int, rules: ValidationRules) -> Reading | Rejection:
    try:
        obj = _ANY_DECODER.decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        return _refuse_unreadable(raw, str(exc), now_ms, rules)
    except RecursionError:
        return Rejection(reason=RejectReason.INVALID_JSON, field=None, message="invalid JSON: nested too deeply")
    return _validate_mapping(obj, now_ms, rules)


def _refuse_unreadable(raw: bytes, error: str, now_ms: int, rules: ValidationRules) -> Reading | Rejection:
    """msgspec refused the bytes. If the lenient standard parser reads them (NaN, Infinity, 1e400) the
    fields decide: NaN is a documented "unknown" for speed, acceleration and heading (devices send it), and
    anywhere else it, or an infinity, is out of range and the offending field is named."""
    try:
        obj = json.loads(bytes(raw))
    except (ValueError, RecursionError):
        return Rejection(reason=RejectReason.INVALID_JSON, field=None, message=f"invalid JSON: {error}")
    result = _validate_mapping(obj, now_ms, rules)
    if isinstance(result, Reading) and result.data is not None and not _finite(result.data):
        # `data` is stored as jsonb, which has no NaN or infinity: a payload with them there is not JSON for us
        return Rejection(reason=RejectReason.INVALID_JSON, field="data", message=f"invalid JSON: {error}",
                         event_id=str(result.event_id), driver_id=result.driver_id)
    return result


def _finite(value: object) -> bool:
    if isinstance(value, float):
        return value == value and value not in (float("inf"), float("-inf"))
    if isinstance(value, dict):
        return all(_finite(v) for v in value.values())
    if isinstance(value, list):
        return all(_finite(v) for v in value)
    return True


_REQUIRED = ("event_id", "driver_id", "ts", "type", "lat", "lon")
_FLOAT_FIELDS = {
    "lat": (LAT_RANGE, RejectReason.LAT_OUT_OF_RANGE),
    "lon": (LON_RANGE, RejectReason.LON_OUT_OF_RANGE),
}
# What a device may not know. Each value listed, a missing field and null mean "unknown" (None): iOS Core
# Location reports a negative `speed` and `course` when invalid, Android leaves them out (`hasSpeed()`,
# `hasBearing()` false), NMEA receivers send an empty field, and phone apps write -1 or NaN. -1 is a real
# acceleration, so only NaN is its sentinel. Any other value outside the range is refused with the reason.
_UNKNOWABLE_FIELDS = {
    "speed_kmh": (SPEED_RANGE_KMH, RejectReason.SPEED_OUT_OF_RANGE, (-1,)),
    "accel_ms2": (ACCEL_RANGE_MPS2, RejectReason.ACCEL_OUT_OF_RANGE, ()),
    "heading": (HEADING_RANGE_DEG, RejectReason.HEADING_OUT_OF_RANGE, (-1,)),
}


def _echo(value: object) -> str | None:
    return value[:_ID_ECHO_MAX] if isinstance(value, str) else None


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _validate_mapping(obj: object, now_ms: int, rules: ValidationRules) -> Reading | Rejection:
    if not isinstance(obj, dict):
        return Rejection(
            reason=RejectReason.NOT_AN_OBJECT,
            field=None,
            message=f"expected a JSON object, got {type(obj).__name__}",
        )
    ids = {"event_id": _echo(obj.get("event_id")), "driver_id": _echo(obj.get("driver_id"))}

    def reject(reason: RejectReason, field: str | None, message: str) -> Rejection:
        return Rejection(reason=reason, field=field, message=message, **ids)

    for name in _REQUIRED:
        if obj.get(name) is None:
            return reject(RejectReason.MISSING_FIELD, name, f"required field {name!r} is missing or null")

    event_id = obj["event_id"]
    if not isinstance(event_id, str):
        return reject(RejectReason.WRONG_TYPE, "event_id", "event_id must be a string")
    try:
        parsed_id = msgspec.convert(event_id, uuid.UUID)
    except msgspec.ValidationError:
        return reject(RejectReason.BAD_EVENT_ID, "event_id", "event_id must be a UUID")

    driver_id = obj["driver_id"]
    if not isinstance(driver_id, str):
        return reject(RejectReason.WRONG_TYPE, "driver_id", "driver_id must be a string")
    if _DRIVER_ID_RE.search(driver_id) is None:
        return reject(RejectReason.BAD_DRIVER_ID, "driver_id", "driver_id must be 1-64 chars of [A-Za-z0-9_.-]")

    kind = obj["type"]
    if not isinstance(kind, str):
        return reject(RejectReason.WRONG_TYPE, "type", "type must be a string")
    try:
        reading_type = ReadingType(kind)
    except ValueError:
        allowed = ", ".join(t.value for t in ReadingType)
        return reject(RejectReason.UNKNOWN_EVENT_TYPE, "type", f"type {kind[:40]!r} is not one of: {allowed}")

    ts = obj["ts"]
    if isinstance(ts, str):
        try:
            ts_ms = _datetime_to_ms(msgspec.convert(ts, _AwareDatetime))
        except msgspec.ValidationError:
            return reject(RejectReason.TS_UNPARSEABLE, "ts", "ts must be RFC 3339 with a timezone, or epoch ms")
    elif isinstance(ts, int) and not isinstance(ts, bool):
        ts_ms = ts
    else:
        return reject(RejectReason.WRONG_TYPE, "ts", "ts must be an RFC 3339 string or an integer (epoch ms)")
    problem = _check_ts_window(ts_ms, now_ms, rules)
    if problem is not None:
        return reject(problem[0], "ts", problem[1])

    for name, ((lo, hi), reason) in _FLOAT_FIELDS.items():
        value = obj[name]
        if not _is_number(value):
            return reject(RejectReason.WRONG_TYPE, name, f"{name} must be a number")
        if not (lo <= value <= hi):  # also false for NaN
            return reject(reason, name, f"{name} must be a finite number within {lo:g}..{hi:g}, got {value!r}")
    known: dict[str, float | None] = {}
    for name, ((lo, hi), reason, sentinels) in _UNKNOWABLE_FIELDS.items():
        value = obj.get(name)
        if value is not None and not _is_number(value):
            return reject(RejectReason.WRONG_TYPE, name, f"{name} must be a number or null")
        if value is None or value != value or value in sentinels:  # unknown: missing, null, NaN, a sentinel
            known[name] = None
        elif lo <= value <= hi:
            known[name] = f32(float(value))
        else:
            unknown = ", ".join(["null", "NaN", *(f"{v:g}" for v in sentinels)])
            return reject(reason, name, f"{name} must be a finite number within {lo:g}..{hi:g} or unknown "
                                        f"({unknown}), got {value!r}")

    limit = obj.get("speed_limit_kmh")
    if limit is not None:
        if not _is_number(limit):
            return reject(RejectReason.WRONG_TYPE, "speed_limit_kmh", "speed_limit_kmh must be a number or null")
        if not (0.0 < limit <= SPEED_LIMIT_MAX_KMH):
            return reject(
                RejectReason.SPEED_LIMIT_OUT_OF_RANGE,
                "speed_limit_kmh",
                f"speed_limit_kmh must be within (0, {SPEED_LIMIT_MAX_KMH:g}], got {limit!r}",
            )
    lateral = obj.get("lateral_accel_ms2")
    if lateral is not None:
        if not _is_number(lateral):
            return reject(RejectReason.WRONG_TYPE, "lateral_accel_ms2", "lateral_accel_ms2 must be a number or null")
        lo, hi = ACCEL_RANGE_MPS2
        if not (lo <= lateral <= hi):
            return reject(
                RejectReason.ACCEL_OUT_OF_RANGE,
                "lateral_accel_ms2",
                f"lateral_accel_ms2 must be a finite number within {lo:g}..{hi:g}, got {lateral!r}",
            )
    data = obj.get("data")
    if data is not None and not isinstance(data, dict):
        return reject(RejectReason.WRONG_TYPE, "data", "data must be an object or null")

    return Reading(
        event_id=parsed_id,
        driver_id=driver_id,
        ts_ms=ts_ms,
        type=reading_type,
        lat=float(obj["lat"]),
        lon=float(obj["lon"]),
        speed_kmh=known["speed_kmh"],
        accel_ms2=known["accel_ms2"],
        heading=known["heading"],
        speed_limit_kmh=None if limit is None else f32(float(limit)),
        lateral_accel_ms2=None if lateral is None else f32(float(lateral)),
        data=data,
    )
