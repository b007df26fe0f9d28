"""Strict validation of inbound readings: every refusal has its own typed reason."""

from __future__ import annotations

import json
import uuid

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.partition_calendar import Month, months_to_retire
from domain.readings import Reading, ReadingType, WireReading
from domain.rules import ValidationRules
from domain.validation import (
    Rejection,
    RejectReason,
    _slow_decode,
    decode_batch,
    decode_reading,
    encode_reading,
    f32,
    validate,
)

RULES = ValidationRules()
NOW_MS = 1_750_000_000_000  # 2025-06-15T15:06:40Z
EVENT_ID = "0b5f8d3e-6a8e-4c3e-9d7e-1e2f3a4b5c6d"


def payload(**changes: object) -> dict:
    base = {
        "event_id": EVENT_ID,
        "driver_id": "driver0001",
        "ts": "2025-06-15T15:06:40Z",
        "type": "position",
        "lat": 48.8566,
        "lon": 2.3522,
        "speed_kmh": 52.5,
        "accel_ms2": -1.25,
        "heading": 359.5,
        "speed_limit_kmh": 50,
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not _DROP}


_DROP = object()


def raw(obj: object) -> bytes:
    return json.dumps(obj).encode()


def test_a_valid_reading_is_normalized():
    reading = decode_reading(raw(payload()), NOW_MS, RULES)
    assert isinstance(reading, Reading)
    assert reading.event_id == uuid.UUID(EVENT_ID)
    assert reading.ts_ms == NOW_MS
    assert reading.type is ReadingType.POSITION
    assert reading.speed_limit_kmh == 50.0 and isinstance(reading.speed_limit_kmh, float)
    assert reading.lateral_accel_ms2 is None and reading.data is None


@pytest.mark.parametrize(
    ("ts", "expected_ms"),
    [
        ("2025-06-15T17:06:40+02:00", NOW_MS),
        ("2025-06-15T15:06:40.123Z", NOW_MS + 123),
        ("2025-06-15T15:06:39.9999Z", NOW_MS - 1),  # sub-millisecond precision is floored
        (NOW_MS - 5, NOW_MS - 5),
    ],
)
def test_timestamps_as_rfc3339_or_epoch_ms(ts, expected_ms):
    reading = decode_reading(raw(payload(ts=ts)), NOW_MS, RULES)
    assert isinstance(reading, Reading) and reading.ts_ms == expected_ms


def test_encode_then_decode_round_trips():
    reading = decode_reading(raw(payload(lateral_accel_ms2=-0.7, data={"src": "obd", "n": [1, 2]})), NOW_MS, RULES)
    assert isinstance(reading, Reading)
    wire = encode_reading(reading)
    assert json.loads(wire)["ts"] == NOW_MS
    assert decode_reading(wire, NOW_MS, RULES) == reading


INVALID = [
    ("event_id", "not-a-uuid", RejectReason.BAD_EVENT_ID),
    ("event_id", "{0b5f8d3e-6a8e-4c3e-9d7e-1e2f3a4b5c6d}", RejectReason.BAD_EVENT_ID),
    ("event_id", 42, RejectReason.WRONG_TYPE),
    ("driver_id", "", RejectReason.BAD_DRIVER_ID),
    ("driver_id", "d" * 65, RejectReason.BAD_DRIVER_ID),
    ("driver_id", "has space", RejectReason.BAD_DRIVER_ID),
    ("driver_id", "trailing-newline\n", RejectReason.BAD_DRIVER_ID),
    ("driver_id", "émile", RejectReason.BAD_DRIVER_ID),
    ("driver_id", 7, RejectReason.WRONG_TYPE),
    ("type", "teleport", RejectReason.UNKNOWN_EVENT_TYPE),
    ("type", "POSITION", RejectReason.UNKNOWN_EVENT_TYPE),
    ("type", ["position"], RejectReason.WRONG_TYPE),
    ("ts", "yesterday", RejectReason.TS_UNPARSEABLE),
    ("ts", "2025-06-15T15:06:40", RejectReason.TS_UNPARSEABLE),  # no timezone
    ("ts", 1.75e12, RejectReason.WRONG_TYPE),
    ("ts", True, RejectReason.WRONG_TYPE),
    ("ts", NOW_MS + 300_001, RejectReason.TS_IN_FUTURE),
    ("ts", "2030-01-01T00:00:00Z", RejectReason.TS_IN_FUTURE),
    ("ts", "2024-05-31T23:59:59.999Z", RejectReason.TS_BEFORE_RETENTION),  # the month before the cutoff
    ("ts", -1, RejectReason.TS_BEFORE_RETENTION),
    ("lat", 90.0001, RejectReason.LAT_OUT_OF_RANGE),
    ("lat", -91, RejectReason.LAT_OUT_OF_RANGE),
    ("lat", "48.8", RejectReason.WRONG_TYPE),
    ("lat", True, RejectReason.WRONG_TYPE),
    ("lon", 180.5, RejectReason.LON_OUT_OF_RANGE),
    ("lon", -181, RejectReason.LON_OUT_OF_RANGE),
    ("speed_kmh", -0.1, RejectReason.SPEED_OUT_OF_RANGE),
    ("speed_kmh", 300.1, RejectReason.SPEED_OUT_OF_RANGE),
    ("accel_ms2", 50.01, RejectReason.ACCEL_OUT_OF_RANGE),
    ("accel_ms2", -60, RejectReason.ACCEL_OUT_OF_RANGE),
    ("heading", 360.01, RejectReason.HEADING_OUT_OF_RANGE),
    ("heading", -2, RejectReason.HEADING_OUT_OF_RANGE),  # -1 is "no course"; other negatives are refused
    ("heading", -0.5, RejectReason.HEADING_OUT_OF_RANGE),
    ("speed_kmh", -2, RejectReason.SPEED_OUT_OF_RANGE),
    ("heading", "north", RejectReason.WRONG_TYPE),
    ("speed_kmh", "fast", RejectReason.WRONG_TYPE),
    ("accel_ms2", "1.0", RejectReason.WRONG_TYPE),
    ("speed_limit_kmh", 0, RejectReason.SPEED_LIMIT_OUT_OF_RANGE),
    ("speed_limit_kmh", 301, RejectReason.SPEED_LIMIT_OUT_OF_RANGE),
    ("speed_limit_kmh", "50", RejectReason.WRONG_TYPE),
    ("lateral_accel_ms2", 51, RejectReason.ACCEL_OUT_OF_RANGE),
    ("data", [1, 2], RejectReason.WRONG_TYPE),
]


@pytest.mark.parametrize(("field", "value", "reason"), INVALID, ids=[f"{f}={v!r}" for f, v, _ in INVALID])
def test_each_invalid_field_is_rejected_with_its_own_reason(field, value, reason):
    result = decode_reading(raw(payload(**{field: value})), NOW_MS, RULES)
    assert isinstance(result, Rejection)
    assert (result.reason, result.field) == (reason, field)
    assert result.message
    via_wire = validate(WireReading(**payload(**{field: value})), NOW_MS, RULES)
    assert via_wire == result


def test_the_edges_of_every_range_are_accepted():
    edges = payload(lat=-90, lon=180, speed_kmh=300, accel_ms2=-50, heading=360, speed_limit_kmh=300)
    assert isinstance(decode_reading(raw(edges), NOW_MS, RULES), Reading)
    assert isinstance(decode_reading(raw(payload(ts=NOW_MS + 300_000)), NOW_MS, RULES), Reading)
    assert isinstance(decode_reading(raw(payload(heading=0, speed_kmh=0, driver_id="a")), NOW_MS, RULES), Reading)


@pytest.mark.parametrize("literal", [b"Infinity", b"-Infinity", b"1e400"])
def test_infinities_are_rejected_as_out_of_range(literal):
    text = raw(payload(speed_kmh=12345.5)).replace(b"12345.5", literal)
    result = decode_reading(text, NOW_MS, RULES)
    assert isinstance(result, Rejection)
    assert (result.reason, result.field) == (RejectReason.SPEED_OUT_OF_RANGE, "speed_kmh")


@pytest.mark.parametrize("field", ["lat", "lon", "speed_limit_kmh", "lateral_accel_ms2"])
def test_nan_is_refused_where_it_is_not_a_sentinel(field):
    text = raw(payload(**{field: 12.3456})).replace(b"12.3456", b"NaN")
    result = decode_reading(text, NOW_MS, RULES)
    assert isinstance(result, Rejection) and result.field == field


# Issue 12: what devices send when they do not know. Each documented sentinel, as JSON text (the literal NaN
# is what Python's json and many phone apps write), is accepted as unknown (None) and keeps the reading.
SENTINELS = [
    ("heading", b"-1"), ("heading", b"-1.0"), ("heading", b"NaN"), ("heading", b"null"), ("heading", None),
    ("speed_kmh", b"-1"), ("speed_kmh", b"NaN"), ("speed_kmh", b"null"), ("speed_kmh", None),
    ("accel_ms2", b"NaN"), ("accel_ms2", b"null"), ("accel_ms2", None),
]  # fmt: skip


@pytest.mark.parametrize(("field", "literal"), SENTINELS, ids=[f"{f}={v!r}" for f, v in SENTINELS])
def test_each_documented_sentinel_is_read_as_unknown(field, literal):
    if literal is None:  # the field is absent
        text = raw(payload(**{field: _DROP}))
    else:
        text = raw(payload(**{field: 12.3456})).replace(b"12.3456", literal)
    result = decode_reading(text, NOW_MS, RULES)
    assert isinstance(result, Reading), result
    assert getattr(result, field) is None
    others = {"heading", "speed_kmh", "accel_ms2"} - {field}
    assert all(getattr(result, o) is not None for o in others)
    readings, rejects = decode_batch([text], NOW_MS, RULES)
    assert readings == [result] and rejects == []


def test_minus_one_is_a_real_acceleration_not_a_sentinel():
    result = decode_reading(raw(payload(accel_ms2=-1)), NOW_MS, RULES)
    assert isinstance(result, Reading) and result.accel_ms2 == -1.0


def test_a_wire_object_with_nan_or_absent_fields_validates_to_unknowns():
    result = validate(WireReading(**payload(heading=float("nan"), speed_kmh=None, accel_ms2=float("nan"))),
                      NOW_MS, RULES)
    assert isinstance(result, Reading)
    assert (result.heading, result.speed_kmh, result.accel_ms2) == (None, None, None)
    wire = payload()
    for name in ("heading", "speed_kmh", "accel_ms2"):
        del wire[name]
    assert isinstance(validate(WireReading(**wire), NOW_MS, RULES), Reading)


def test_a_reading_with_unknown_fields_round_trips_through_the_wire_encoder():
    result = decode_reading(raw(payload(heading=-1, speed_kmh=_DROP)), NOW_MS, RULES)
    assert isinstance(result, Reading)
    assert decode_reading(encode_reading(result), NOW_MS, RULES) == result


@pytest.mark.parametrize("field", ["event_id", "driver_id", "ts", "type", "lat", "lon"])
def test_a_missing_required_field_is_named(field):
    result = decode_reading(raw(payload(**{field: _DROP})), NOW_MS, RULES)
    assert isinstance(result, Rejection)
    assert (result.reason, result.field) == (RejectReason.MISSING_FIELD, field)


def test_optional_fields_may_be_null_or_absent():
    for changes in ({"speed_limit_kmh": None}, {"speed_limit_kmh": _DROP}, {"data": None}):
        assert isinstance(decode_reading(raw(payload(**changes)), NOW_MS, RULES), Reading)


def test_unknown_fields_are_ignored():
    assert isinstance(decode_reading(raw(payload(firmware="1.2.3")), NOW_MS, RULES), Reading)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{not json", RejectReason.INVALID_JSON),
        (b"", RejectReason.INVALID_JSON),
        (b"\xff\xfe", RejectReason.INVALID_JSON),
        (b"[" * 5000 + b"]" * 5000, RejectReason.INVALID_JSON),
        (b"[1, 2]", RejectReason.NOT_AN_OBJECT),
        (b'"position"', RejectReason.NOT_AN_OBJECT),
        (b"null", RejectReason.NOT_AN_OBJECT),
    ],
)
def test_unreadable_payloads_are_rejected_whole(body, reason):
    result = decode_reading(body, NOW_MS, RULES)
    assert isinstance(result, Rejection)
    assert result.reason is reason and result.field is None


def test_an_oversized_payload_is_refused_before_decoding():
    big = raw(payload(data={"blob": "x" * 70_000}))
    result = decode_reading(big, NOW_MS, RULES)
    assert isinstance(result, Rejection) and result.reason is RejectReason.PAYLOAD_TOO_LARGE
    small_rules = ValidationRules(max_payload_bytes=64)
    assert decode_reading(raw(payload()), NOW_MS, small_rules).reason is RejectReason.PAYLOAD_TOO_LARGE


def test_a_number_msgspec_cannot_hold_outside_known_fields_is_still_refused():
    text = raw(payload(data={"x": 123.5})).replace(b"123.5", b"1e999")
    result = decode_reading(text, NOW_MS, RULES)
    assert isinstance(result, Rejection) and result.reason is RejectReason.INVALID_JSON


def test_a_rejection_echoes_the_ids_it_could_read():
    result = decode_reading(raw(payload(lat=99)), NOW_MS, RULES)
    assert (result.event_id, result.driver_id) == (EVENT_ID, "driver0001")
    result = decode_reading(raw(payload(driver_id=5, event_id="x" * 500)), NOW_MS, RULES)
    assert result.driver_id is None and len(result.event_id) == 100


def test_decode_batch_returns_readings_and_indexed_rejections():
    raws = [raw(payload()), b"{", raw(payload(lat=100)), raw(payload(event_id=str(uuid.uuid4())))]
    readings, rejects = decode_batch(raws, NOW_MS, RULES)
    assert [r.event_id for r in readings] == [uuid.UUID(EVENT_ID), uuid.UUID(json.loads(raws[3])["event_id"])]
    assert [(i, r.reason) for i, r in rejects] == [
        (1, RejectReason.INVALID_JSON),
        (2, RejectReason.LAT_OUT_OF_RANGE),
    ]


def test_rejections_encode_for_the_dead_letter_queue():
    result = decode_reading(raw(payload(heading=400)), NOW_MS, RULES)
    as_json = json.loads(msgspec.json.encode(result))
    assert as_json["reason"] == "heading_out_of_range" and as_json["field"] == "heading"


# --- the fast path accepts exactly what the slow (authoritative) path accepts ------------------------

_tricky = {
    "event_id": st.sampled_from([EVENT_ID, EVENT_ID.replace("-", ""), EVENT_ID.upper(), "x", "", 1]),
    "driver_id": st.sampled_from(["d", "a.b-c_D9", "", "x" * 64, "x" * 65, "a b", "a\n", None]),
    "ts": st.one_of(
        st.integers(NOW_MS - 400 * 86_400_000, NOW_MS + 1_000_000),
        st.sampled_from(
            ["2025-06-15T15:06:40Z", "2025-06-15 15:06:40+00:00", "2025-06-15T15:06:40", "2025-06-15", "now"]
        ),
    ),
    "type": st.sampled_from([*(t.value for t in ReadingType), "other", 3]),
    "lat": st.one_of(st.floats(-100, 100), st.integers(-100, 100), st.just("1")),
    "lon": st.floats(-200, 200),
    "speed_kmh": st.one_of(st.floats(-5, 305), st.booleans()),
    "accel_ms2": st.floats(-55, 55),
    "heading": st.floats(-5, 365),
    "speed_limit_kmh": st.one_of(st.none(), st.floats(-5, 305), st.just(0)),
    "lateral_accel_ms2": st.one_of(st.none(), st.floats(-55, 55)),
    "data": st.one_of(st.none(), st.just({"k": 1}), st.just([1])),
}


@settings(max_examples=300, deadline=None)
@given(st.fixed_dictionaries({}, optional=_tricky))
def test_fast_and_slow_paths_agree(changes):
    body = raw(payload(**changes))
    assert decode_reading(body, NOW_MS, RULES) == _slow_decode(body, NOW_MS, RULES)


@settings(max_examples=100, deadline=None)
@given(
    lat=st.floats(-90, 90),
    speed=st.floats(0, 300),
    limit=st.one_of(st.none(), st.floats(0.5, 300)),
    ts=st.integers(NOW_MS - 86_400_000, NOW_MS),
    kind=st.sampled_from(list(ReadingType)),
)
def test_encode_reading_round_trips_any_valid_reading(lat, speed, limit, ts, kind):
    reading = Reading(
        event_id=uuid.UUID(int=ts),
        driver_id="drv",
        ts_ms=ts,
        type=kind,
        lat=lat,
        lon=-lat,
        speed_kmh=f32(speed),
        accel_ms2=1.5,
        heading=123.25,
        speed_limit_kmh=None if limit is None else f32(limit),
    )
    assert decode_reading(encode_reading(reading), NOW_MS, RULES) == reading


def test_decoded_readings_are_canonical_so_storage_round_trips_them_exactly():
    """Speed, acceleration and heading are stored as float32 (`real`): a decoded reading already holds
    float32 values, so replaying it from PostgreSQL gives the very same reading (and the same events)."""
    import numpy as np

    from domain.batches import ReadingColumns

    body = raw(payload(speed_kmh=168.4, accel_ms2=-3.3, heading=359.9, speed_limit_kmh=88.8))
    reading = decode_reading(body, NOW_MS, RULES)
    assert isinstance(reading, Reading)
    assert reading.speed_kmh == float(np.float32(168.4)) != 168.4
    assert ReadingColumns.from_readings([reading], [0], [0]).to_readings() == [reading]


def test_the_first_instant_of_the_oldest_kept_month_is_accepted():
    assert isinstance(decode_reading(raw(payload(ts="2024-06-01T00:00:00Z")), NOW_MS, RULES), Reading)


_MS_2000 = 946_684_800_000
_MS_2100 = 4_102_444_800_000


@settings(max_examples=400)
@given(
    now_ms=st.integers(_MS_2000, _MS_2100),
    back_ms=st.integers(0, 40 * 31 * 86_400_000),
    retention_months=st.integers(1, 36),
)
def test_no_accepted_timestamp_falls_in_a_month_that_retention_retires(now_ms, back_ms, retention_months):
    """One rule for validation and retention, across month ends and leap years: a reading is refused as too
    old exactly when its month is one that retention would retire at the same instant."""
    from datetime import UTC, datetime

    ts_ms = now_ms - back_ms
    rules = ValidationRules(retention_months=retention_months)
    result = decode_reading(raw(payload(ts=ts_ms)), now_ms, rules)
    month = Month.of(datetime.fromtimestamp(ts_ms / 1000, UTC))
    now = datetime.fromtimestamp(now_ms / 1000, UTC)
    retired = months_to_retire([month], now, retention_months) == [month]
    refused = isinstance(result, Rejection) and result.reason is RejectReason.TS_BEFORE_RETENTION
    assert refused == retired
