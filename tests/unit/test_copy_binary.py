"""The binary COPY encoder, checked against a tiny reference parser of PostgreSQL's binary COPY format."""

from __future__ import annotations

import struct
import time
import uuid
from datetime import UTC, datetime, timedelta

import msgspec
import numpy as np
import pytest

from domain.batches import ReadingColumns, empty_reading_columns
from domain.readings import Reading, ReadingType
from storage.postgres.copy_binary import COLUMN_NAMES, COPY_SIGNATURE, READING_COPY_COLUMNS, encode_readings

PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


def parse_copy(payload: bytes) -> list[dict]:
    """Reference decoder for exactly the column types of READING_COPY_COLUMNS (one struct call per field)."""
    assert payload.startswith(COPY_SIGNATURE)
    pos = len(COPY_SIGNATURE)
    flags, ext = struct.unpack_from(">ii", payload, pos)
    assert (flags, ext) == (0, 0)
    pos += 8
    rows = []
    while True:
        (count,) = struct.unpack_from(">h", payload, pos)
        pos += 2
        if count == -1:
            assert pos == len(payload), "bytes after the trailer"
            return rows
        assert count == len(READING_COPY_COLUMNS)
        row = {}
        for name, pg_type in READING_COPY_COLUMNS:
            (length,) = struct.unpack_from(">i", payload, pos)
            pos += 4
            if length == -1:
                row[name] = None
                continue
            raw = payload[pos : pos + length]
            pos += length
            row[name] = _decode(pg_type, raw)
        rows.append(row)


def _decode(pg_type: str, raw: bytes):
    if pg_type == "uuid":
        return uuid.UUID(bytes=raw)
    if pg_type == "timestamptz":
        return PG_EPOCH + timedelta(microseconds=struct.unpack(">q", raw)[0])
    if pg_type == "double precision":
        return struct.unpack(">d", raw)[0]
    if pg_type == "real":
        return struct.unpack(">f", raw)[0]
    if pg_type == "integer":
        return struct.unpack(">i", raw)[0]
    if pg_type == "bigint":
        return struct.unpack(">q", raw)[0]
    if pg_type == "text":
        return raw.decode()
    if pg_type == "jsonb":
        assert raw[0] == 1, "jsonb binary version byte"
        return msgspec.json.decode(raw[1:])
    raise AssertionError(pg_type)


def reading(i: int, **overrides) -> Reading:
    fields = {
        "event_id": uuid.UUID(int=(i * 7919) << 64 | i),
        "driver_id": f"drv-{i % 5:0{1 + i % 9}d}",
        "ts_ms": 1_780_000_000_123 + i * 1001,
        "type": list(ReadingType)[i % len(ReadingType)],
        "lat": 48.1 + i * 1e-6,
        "lon": -11.5 - i * 1e-6,
        "speed_kmh": None if i % 7 == 3 else 10.5 + i,  # unknown to the device: NULL
        "accel_ms2": None if i % 11 == 4 else -1.25,
        "heading": None if i % 5 == 1 else float(i % 360),
        "speed_limit_kmh": None if i % 3 == 0 else 50.0,
        "lateral_accel_ms2": None if i % 2 == 0 else 0.5,
        "data": None,
    }
    fields.update(overrides)
    return Reading(**fields)


def columns(readings: list[Reading], first_offset: int = 1000) -> ReadingColumns:
    n = len(readings)
    return ReadingColumns.from_readings(readings, [i % 4 for i in range(n)], range(first_offset, first_offset + n))


def expected_row(r: Reading, partition: int, offset: int) -> dict:
    f32 = lambda v: None if v is None else float(np.float32(v))  # noqa: E731
    return {
        "event_id": r.event_id,
        "ts": datetime.fromtimestamp(r.ts_ms / 1000, UTC).replace(microsecond=(r.ts_ms % 1000) * 1000),
        "lat": r.lat,
        "lon": r.lon,
        "speed_kmh": f32(r.speed_kmh),
        "accel_ms2": f32(r.accel_ms2),
        "heading": f32(r.heading),
        "source_partition": partition,
        "source_offset": offset,
        "source_watermark_ms": r.ts_ms,  # ReadingColumns' default: the reading's own time
        "speed_limit_kmh": f32(r.speed_limit_kmh),
        "lateral_accel_ms2": f32(r.lateral_accel_ms2),
        "driver_id": r.driver_id,
        "event_type": r.type.value,
        "data": r.data,
    }


def test_every_field_of_every_row_decodes_back_to_the_reading():
    readings = [reading(i) for i in range(50)]
    rows = parse_copy(encode_readings(columns(readings)))
    assert rows == [expected_row(r, i % 4, 1000 + i) for i, r in enumerate(readings)]


def test_nan_becomes_null_and_values_stay_values():
    rows = parse_copy(encode_readings(columns([reading(0), reading(1)])))
    assert rows[0]["speed_limit_kmh"] is None and rows[0]["lateral_accel_ms2"] is None
    assert rows[1]["speed_limit_kmh"] == 50.0 and rows[1]["lateral_accel_ms2"] == 0.5


def test_data_objects_are_jsonb_and_missing_ones_null():
    readings = [
        reading(0, data={"g": [1.5, -2], "note": "crash ✓"}),
        reading(1),
        reading(2, data={}),
        reading(3, data={"k": "v" * 300}),
    ]
    rows = parse_copy(encode_readings(columns(readings)))
    assert [row["data"] for row in rows] == [{"g": [1.5, -2], "note": "crash ✓"}, None, {}, {"k": "v" * 300}]
    assert [row["driver_id"] for row in rows] == [r.driver_id for r in readings]


def test_an_empty_batch_is_header_and_trailer_only():
    assert parse_copy(encode_readings(empty_reading_columns())) == []


def test_driver_ids_of_every_length_up_to_the_column_width():
    ids = ["a", "ab", "x" * 63, "y" * 64, "d_1.2-3"]
    readings = [reading(i, driver_id=d) for i, d in enumerate(ids)]
    rows = parse_copy(encode_readings(columns(readings)))
    assert [row["driver_id"] for row in rows] == ids


def test_timestamps_before_2000_and_far_ahead_encode_exactly():
    stamps = [0, 946_684_799_999, 946_684_800_000, 4_102_444_800_001]
    readings = [reading(i, ts_ms=ts) for i, ts in enumerate(stamps)]
    rows = parse_copy(encode_readings(columns(readings)))
    assert [round((row["ts"] - datetime(1970, 1, 1, tzinfo=UTC)) / timedelta(milliseconds=1)) for row in rows] == stamps


def test_the_column_list_matches_the_payload_order():
    assert COLUMN_NAMES[:2] == ("event_id", "ts") and COLUMN_NAMES[-1] == "data"
    assert len(set(COLUMN_NAMES)) == len(COLUMN_NAMES) == 15


def test_mismatched_column_lengths_are_refused():
    cols = columns([reading(i) for i in range(3)])
    broken = ReadingColumns(**{**{f: getattr(cols, f) for f in cols.__slots__}, "lat": np.zeros(2)})
    with pytest.raises(ValueError, match="lat must have shape"):
        encode_readings(broken)


def test_an_unknown_type_code_is_refused():
    cols = columns([reading(0)])
    broken = ReadingColumns(**{**{f: getattr(cols, f) for f in cols.__slots__}, "type_code": np.array([99], np.uint8)})
    with pytest.raises(ValueError, match="type_code"):
        encode_readings(broken)


def test_ten_thousand_rows_encode_in_a_few_milliseconds():
    readings = [reading(i) for i in range(10_000)]
    cols = columns(readings)
    encode_readings(cols)
    started = time.perf_counter()
    payload = encode_readings(cols)
    elapsed_s = time.perf_counter() - started
    rows = parse_copy(payload)
    assert len(rows) == 10_000 and rows[-1] == expected_row(readings[-1], 9_999 % 4, 1000 + 9_999)
    print(f"encode 10k readings: {elapsed_s * 1000:.2f} ms, {len(payload) / 1e6:.2f} MB")
    assert elapsed_s < 0.25  # generous on a loaded 2-core CI box; typically a few ms
