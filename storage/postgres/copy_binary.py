"""PostgreSQL binary COPY payload for a batch of readings, built with numpy (PERF_NOTES.md §1).

Pure: no I/O. `encode_readings(columns)` returns the whole `COPY … FROM STDIN (FORMAT binary)` stream
(signature, header, tuples, trailer) for the columns `READING_COPY_COLUMNS`, in that order.

Layout (PostgreSQL docs, "COPY — Binary Format"): each tuple is an int16 field count, then per field an
int32 byte length (-1 = NULL, no data follows) and the value in the type's binary send format, all
big-endian. The column order is ours to choose, so the seven fixed-width columns come first
and the variable ones (nullable reals, driver id, reading type, jsonb data) last. Each row is written
into a padded fixed-width record of a numpy structured array, column by column; one boolean mask of
the bytes each row really uses squeezes the padding out (`np.compress`). No per-row Python loop, except
one `b"".join` over the rare `data` objects.

Value encodings: uuid = its 16 bytes; timestamptz = int64 microseconds since 2000-01-01 UTC; float8 /
float4 = IEEE big-endian; text = the bytes; jsonb = version byte 1 followed by the JSON text. A NaN in
`speed_kmh`, `accel_ms2`, `heading` (the device did not know), `speed_limit_kmh` or `lateral_accel_ms2` is
NULL; so is a NaN `lat`/`lon` (positions stripped for a mileage_only driver, docs/PRIVACY.md §3: the only nullable
prefix columns, their NULL mask is built only when a batch has one); `data_json` None (or an empty tuple) is NULL.
"""

from __future__ import annotations

import numpy as np

from domain.batches import READING_TYPES, ReadingColumns

COPY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00"
COPY_HEADER = COPY_SIGNATURE + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"  # flags 0, no header extension
COPY_TRAILER = b"\xff\xff"  # int16 -1
PG_EPOCH_MS = 946_684_800_000  # 2000-01-01T00:00:00Z in Unix epoch milliseconds
JSONB_VERSION = 1

# (column, PostgreSQL type) in payload order; the staging table declares exactly these.
READING_COPY_COLUMNS: tuple[tuple[str, str], ...] = (
    ("event_id", "uuid"),
    ("ts", "timestamptz"),
    ("lat", "double precision"),
    ("lon", "double precision"),
    ("source_partition", "integer"),
    ("source_offset", "bigint"),
    ("source_watermark_ms", "bigint"),
    ("speed_kmh", "real"),
    ("accel_ms2", "real"),
    ("heading", "real"),
    ("speed_limit_kmh", "real"),
    ("lateral_accel_ms2", "real"),
    ("driver_id", "text"),
    ("event_type", "text"),
    ("data", "jsonb"),
)
COLUMN_NAMES: tuple[str, ...] = tuple(name for name, _ in READING_COPY_COLUMNS)

# The fixed prefix of every tuple: field count, then (length, value) for the fixed-width columns.
_PREFIX_FIELDS: list[tuple[str, str]] = [
    ("nfields", ">i2"),
    ("event_id_len", ">i4"), ("event_id", "V16"),
    ("ts_len", ">i4"), ("ts", ">i8"),
    ("lat_len", ">i4"), ("lat", ">f8"),
    ("lon_len", ">i4"), ("lon", ">f8"),
    ("partition_len", ">i4"), ("partition", ">i4"),
    ("offset_len", ">i4"), ("offset", ">i8"),
    ("watermark_len", ">i4"), ("watermark", ">i8"),
]  # fmt: skip
_NULL = np.array([-1], dtype=">i4").view(np.uint8)

# The reading type as a text field, pre-encoded once: (int32 length, name) per type code, NUL-padded.
_TYPE_FIELDS = [len(t.value).to_bytes(4, "big") + t.value.encode() for t in READING_TYPES]
_TYPE_LEN = np.array([len(f) for f in _TYPE_FIELDS], dtype=np.int64)
_TYPE_WIDTH = int(_TYPE_LEN.max())
_TYPE_ROWS = np.frombuffer(b"".join(f.ljust(_TYPE_WIDTH, b"\0") for f in _TYPE_FIELDS), dtype=f"V{_TYPE_WIDTH}")


def encode_readings(columns: ReadingColumns) -> bytes:
    """The binary COPY stream of `columns` for `COPY staging (COLUMN_NAMES) FROM STDIN (FORMAT binary)`.

    Every row is first written into a padded, fixed-width record (a numpy structured array filled column
    by column); a boolean mask of the bytes each row really uses then squeezes the padding out, leaving
    the tuples back to back.
    """
    n = len(columns)
    _check_shapes(columns, n)
    if n == 0:
        return COPY_HEADER + COPY_TRAILER
    ids = np.asarray(columns.driver_id)
    if ids.dtype.kind != "S":
        ids = ids.astype("S")
    # narrowing to the longest id keeps the padding (which the mask must skip) small
    id_width = max(1, int(np.char.str_len(ids).max()))
    ids = ids.astype(f"S{id_width}")
    data = _data_part(columns.data_json, n)
    data_width = 4 if data is None else 5 + data[1].shape[1]
    tail = [
        ("speed_len", ">i4"), ("speed", ">f4"),
        ("accel_len", ">i4"), ("accel", ">f4"),
        ("heading_len", ">i4"), ("heading", ">f4"),
        ("limit_len", ">i4"), ("limit", ">f4"),
        ("lateral_len", ">i4"), ("lateral", ">f4"),
        ("id_len", ">i4"), ("id", f"S{id_width}"),
        ("type", f"V{_TYPE_WIDTH}"),
        ("data", f"V{data_width}"),
    ]  # fmt: skip
    record = np.dtype(_PREFIX_FIELDS + tail)
    rows = np.empty(n, dtype=record)
    used = np.ones((n, record.itemsize), dtype=bool)  # which bytes of each padded record are real

    rows["nfields"] = len(READING_COPY_COLUMNS)
    for name, width in (
        ("event_id", 16), ("ts", 8), ("lat", 8), ("lon", 8), ("partition", 4), ("offset", 8), ("watermark", 8),
    ):  # fmt: skip
        rows[f"{name}_len"] = width
    rows["event_id"] = np.ascontiguousarray(columns.event_id, dtype=np.uint8).view("V16").reshape(n)
    rows["ts"] = (columns.ts_ms.astype(np.int64) - PG_EPOCH_MS) * 1000
    rows["lat"] = columns.lat
    rows["lon"] = columns.lon
    for field in ("lat", "lon"):  # NULL only for stripped positions (mileage_only): rare, so checked once per batch
        null = np.isnan(getattr(columns, field))
        if null.any():
            rows[f"{field}_len"] = np.where(null, -1, 8)
            _mark_used(used, record, f"{field}_len", 12, np.where(null, 4, 12))
    rows["partition"] = columns.source_partition
    rows["offset"] = columns.source_offset
    rows["watermark"] = columns.source_watermark_ms

    for field, values in (
        ("speed", columns.speed_kmh), ("accel", columns.accel_ms2), ("heading", columns.heading),
        ("limit", columns.speed_limit_kmh), ("lateral", columns.lateral_accel_ms2),
    ):  # fmt: skip
        null = np.isnan(values)
        rows[f"{field}_len"] = np.where(null, -1, 4)
        rows[field] = values
        _mark_used(used, record, f"{field}_len", 8, np.where(null, 4, 8))

    id_bytes = ids.view(np.uint8).reshape(n, id_width) != 0
    # numpy's S dtype drops trailing NUL bytes: the text is everything up to the last non-NUL byte
    id_len = np.where(id_bytes.any(axis=1), id_width - np.argmax(id_bytes[:, ::-1], axis=1), 0)
    rows["id_len"] = id_len
    rows["id"] = ids
    _mark_used(used, record, "id_len", 4 + id_width, 4 + id_len)

    codes = columns.type_code.astype(np.intp)
    if codes.min() < 0 or codes.max() >= len(READING_TYPES):
        raise ValueError(f"type_code outside 0..{len(READING_TYPES) - 1}")
    rows["type"] = _TYPE_ROWS[codes]
    _mark_used(used, record, "type", _TYPE_WIDTH, _TYPE_LEN[codes])

    if data is None:
        rows["data"] = _NULL.view("V4")[0]
    else:
        data_len, data_bytes = data
        data_field = np.empty((n, data_width), dtype=np.uint8)
        data_field[:, :4] = np.where(data_len < 0, -1, data_len + 1).astype(">i4").view(np.uint8).reshape(n, 4)
        data_field[:, 4] = JSONB_VERSION
        data_field[:, 5:] = data_bytes
        rows["data"] = data_field.view(f"V{data_width}").reshape(n)
        _mark_used(used, record, "data", data_width, np.where(data_len < 0, 4, 5 + data_len))

    body = int(used.sum())
    out = np.empty(len(COPY_HEADER) + body + len(COPY_TRAILER), dtype=np.uint8)
    out[: len(COPY_HEADER)] = np.frombuffer(COPY_HEADER, dtype=np.uint8)
    np.compress(used.reshape(-1), rows.view(np.uint8).reshape(-1), out=out[len(COPY_HEADER) : -len(COPY_TRAILER)])
    out[-len(COPY_TRAILER) :] = np.frombuffer(COPY_TRAILER, dtype=np.uint8)
    return out.tobytes()


def _mark_used(used: np.ndarray, record: np.dtype, first_field: str, width: int, lengths: np.ndarray) -> None:
    """Only the first `lengths[r]` of the `width` bytes starting at `first_field` are row r's data."""
    start = record.fields[first_field][1]
    used[:, start : start + width] = np.arange(width) < lengths[:, None]


def _data_part(data_json: tuple[bytes | None, ...], n: int) -> tuple[np.ndarray, np.ndarray] | None:
    """None when every row's `data` is NULL (the usual case); else (JSON length or -1, NUL-padded JSON bytes)."""
    if not data_json or all(d is None for d in data_json):
        return None
    data_len = np.fromiter((-1 if d is None else len(d) for d in data_json), dtype=np.int64, count=n)
    padded = np.zeros((n, max(0, int(data_len.max()))), dtype=np.uint8)
    padded[np.arange(padded.shape[1]) < data_len[:, None]] = np.frombuffer(
        b"".join(d for d in data_json if d is not None), dtype=np.uint8
    )
    return data_len, padded


def _check_shapes(columns: ReadingColumns, n: int) -> None:
    if columns.event_id.shape != (n, 16):
        raise ValueError(f"event_id must have shape ({n}, 16), got {columns.event_id.shape}")
    for name in (
        "driver_id", "type_code", "lat", "lon", "speed_kmh", "accel_ms2", "heading",
        "speed_limit_kmh", "lateral_accel_ms2", "source_partition", "source_offset", "source_watermark_ms",
    ):  # fmt: skip
        shape = getattr(columns, name).shape
        if shape != (n,):
            raise ValueError(f"{name} must have shape ({n},), got {shape}")
    if columns.data_json and len(columns.data_json) != n:
        raise ValueError(f"data_json must be empty or have {n} items, got {len(columns.data_json)}")
