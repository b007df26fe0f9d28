"""The SQL of the event store (storage/postgres/event_store.py): one statement per step, arrays in, no per-row
round trips.

Epoch milliseconds cross the wire as bigint and become timestamptz in SQL (`timestamptz 'epoch' + ms *
interval '1 millisecond'`, exact to the microsecond for any realistic date); they come back as
`(extract(epoch FROM ts) * 1000)::bigint` (numeric, exact). JSON goes in as UTF-8 bytea and comes back
as text: neither depends on the JSON codecs a pool may register.
"""

from __future__ import annotations

from storage.postgres.copy_binary import READING_COPY_COLUMNS


def ms_to_ts(expr: str) -> str:
    return f"(timestamptz 'epoch' + ({expr}) * interval '1 millisecond')"


def ts_to_ms(expr: str) -> str:
    return f"(extract(epoch FROM {expr}) * 1000)::bigint"


STAGING_TABLE = "event_store_readings"
_COLUMNS = ", ".join(name for name, _ in READING_COPY_COLUMNS)

# A session-lifetime temp table, emptied at every commit (ON COMMIT DELETE ROWS truncates it in place,
# only in transactions that used it). IF NOT EXISTS makes the statement safe on any pooled connection.
CREATE_STAGING = (
    f"CREATE TEMP TABLE IF NOT EXISTS {STAGING_TABLE} ("
    + ", ".join(f"{name} {pg_type}" for name, pg_type in READING_COPY_COLUMNS)
    + ") ON COMMIT DELETE ROWS"
)

# Duplicates (a retried batch, or the same reading twice in one batch) are absorbed by the primary key.
INSERT_READINGS = (
    f"INSERT INTO telematics_events ({_COLUMNS}) SELECT {_COLUMNS} FROM pg_temp.{STAGING_TABLE} ON CONFLICT DO NOTHING"
)

# Creates missing stream heads and locks every head of the batch in one statement, in stream-id order
# (a fixed lock order: two writers never deadlock). ON CONFLICT DO UPDATE waits for a concurrent
# creator, then locks and returns the latest committed head even when it is newer than this
# statement's snapshot (READ COMMITTED), which a plain SELECT would not see.
LOCK_STREAMS = """
INSERT INTO streams AS s (stream_id, version)
SELECT stream_id, 0 FROM unnest($1::text[]) AS i(stream_id) ORDER BY stream_id
ON CONFLICT (stream_id) DO UPDATE SET version = s.version
RETURNING s.stream_id, s.version
"""

STORED_VERSIONS = """
SELECT e.stream_id, e.stream_version, e.event_id
FROM unnest($1::text[], $2::bigint[]) AS c(stream_id, stream_version)
JOIN domain_events e ON e.stream_id = c.stream_id AND e.stream_version = c.stream_version
"""

# Appends the new events (each with the request id of the reading that caused it, NULL when none) and moves
# each head, compare-and-set on the head locked above.
APPEND_EVENTS = f"""
WITH appended AS (
    INSERT INTO domain_events (event_id, stream_id, stream_version, event_type, payload, occurred_at, request_id)
    SELECT e.event_id, e.stream_id, e.stream_version, e.event_type, convert_from(e.payload, 'UTF8')::jsonb,
           {ms_to_ts("e.occurred_at_ms")}, e.request_id
    FROM unnest($1::uuid[], $2::text[], $3::bigint[], $4::text[], $5::bytea[], $6::bigint[], $10::text[])
         AS e(event_id, stream_id, stream_version, event_type, payload, occurred_at_ms, request_id)
    RETURNING 1
), heads AS (
    UPDATE streams AS s SET version = h.version, updated_at = now()
    FROM unnest($7::text[], $8::bigint[], $9::bigint[]) AS h(stream_id, version, expected)
    WHERE s.stream_id = h.stream_id AND s.version = h.expected
    RETURNING 1
)
SELECT (SELECT count(*) FROM appended) AS events, (SELECT count(*) FROM heads) AS heads
"""

# Keeps the newest snapshot: replaced only by a greater source offset (or, at the same offset, a greater
# stream version); a snapshot stored without a position (before migration 0005) is always replaced.
UPSERT_SNAPSHOTS = f"""
INSERT INTO driver_snapshots AS d
    (driver_id, stream_version, state, state_format, last_ts, source_partition, source_offset, open, updated_at)
SELECT s.driver_id, s.stream_version, s.state, s.state_format, {ms_to_ts("s.last_ts_ms")},
       s.source_partition, s.source_offset, s.open, now()
FROM unnest($1::text[], $2::bigint[], $3::bytea[], $4::int[], $5::bigint[], $6::int[], $7::bigint[], $8::boolean[])
     AS s(driver_id, stream_version, state, state_format, last_ts_ms, source_partition, source_offset, open)
ORDER BY s.driver_id
ON CONFLICT (driver_id) DO UPDATE SET
    stream_version = EXCLUDED.stream_version, state = EXCLUDED.state, state_format = EXCLUDED.state_format,
    last_ts = EXCLUDED.last_ts, source_partition = EXCLUDED.source_partition,
    source_offset = EXCLUDED.source_offset, open = EXCLUDED.open, updated_at = now()
WHERE d.source_offset IS NULL
   OR EXCLUDED.source_offset > d.source_offset
   OR (EXCLUDED.source_offset = d.source_offset AND EXCLUDED.stream_version > d.stream_version)
"""

TRIP_COLUMNS: tuple[tuple[str, str], ...] = (
    ("trip_id", "uuid"),
    ("driver_id", "text"),
    ("start_ms", "bigint"),
    ("end_ms", "bigint"),
    ("distance_m", "float8"),
    ("duration_s", "float8"),
    ("avg_speed_kmh", "float4"),
    ("max_speed_kmh", "float4"),
    ("harsh_braking_count", "int"),
    ("harsh_acceleration_count", "int"),
    ("harsh_cornering_count", "int"),
    ("speeding_moderate_s", "float8"),
    ("speeding_severe_s", "float8"),
    ("night_s", "float8"),
    ("phone_use_moving_s", "float8"),
    ("idle_s", "float8"),
    ("crash_count", "int"),
    ("end_reason", "text"),
    ("harsh_braking_low_count", "int"),  # migration 0008: grades of the harsh episodes (docs/DOMAIN.md §4)
    ("harsh_braking_high_count", "int"),
    ("harsh_acceleration_low_count", "int"),
    ("harsh_acceleration_high_count", "int"),
    ("harsh_cornering_low_count", "int"),
    ("harsh_cornering_high_count", "int"),
    ("quality_flags", "text"),  # text[] in the table; crosses unnest as one comma-joined text per trip
)
_TRIP_TARGETS = [("start_time" if n == "start_ms" else "end_time" if n == "end_ms" else n) for n, _ in TRIP_COLUMNS]
_TRIP_VALUES = [
    ms_to_ts(f"t.{n}") if n in ("start_ms", "end_ms")
    else "coalesce(string_to_array(nullif(t.quality_flags, ''), ','), '{}')" if n == "quality_flags"
    else f"t.{n}"
    for n, _ in TRIP_COLUMNS
]  # fmt: skip

# Trips are immutable facts keyed by their deterministic id: a replay inserts nothing.
INSERT_TRIPS = (
    f"INSERT INTO trips ({', '.join(_TRIP_TARGETS)}) SELECT {', '.join(_TRIP_VALUES)} FROM unnest("
    + ", ".join(f"${i}::{pg_type}[]" for i, (_, pg_type) in enumerate(TRIP_COLUMNS, start=1))
    + f") AS t({', '.join(n for n, _ in TRIP_COLUMNS)}) ON CONFLICT (trip_id) DO NOTHING"
)

# Monotonic: two transactions of one partition can commit out of order (PERF_NOTES.md §3); an older
# offset never moves the stored one back. Rows in (topic, partition) order: a fixed lock order.
UPSERT_OFFSETS = """
INSERT INTO consumer_offsets AS o (consumer_group, topic, partition, next_offset, watermark_ms)
SELECT $1, p.topic, p.partition, p.next_offset, p.watermark_ms
FROM unnest($2::text[], $3::int[], $4::bigint[], $5::bigint[]) AS p(topic, partition, next_offset, watermark_ms)
ORDER BY p.topic, p.partition
ON CONFLICT (consumer_group, topic, partition) DO UPDATE
    SET next_offset = GREATEST(o.next_offset, EXCLUDED.next_offset),
        watermark_ms = GREATEST(o.watermark_ms, EXCLUDED.watermark_ms), updated_at = now()
    WHERE EXCLUDED.next_offset > o.next_offset
"""

# Activation, query 1 of 2: timezone, snapshot and stream head of every asked driver (stream id = driver id).
LOAD_DRIVERS = f"""
SELECT i.driver_id, coalesce(d.timezone, 'UTC') AS timezone, coalesce(st.version, 0) AS stream_head,
       s.stream_version, s.state, s.state_format, {ts_to_ms("s.last_ts")} AS last_ts_ms,
       s.source_partition, s.source_offset, coalesce(s.open, false) AS open
FROM unnest($1::text[]) AS i(driver_id)
LEFT JOIN drivers d ON d.driver_id = i.driver_id
LEFT JOIN driver_snapshots s ON s.driver_id = i.driver_id
LEFT JOIN streams st ON st.stream_id = i.driver_id
"""

# Activation, query 2 of 2: each driver's readings after its snapshot (after_offset NULL: all of them),
# not older than from_ms (NULL: no bound). The ts bound is an index condition on
# telematics_events_driver_id_ts_idx and prunes partitions at run time.
# Activation read. asyncpg prepares it; after five runs PostgreSQL may switch to a generic plan, and on
# partitions without statistics that plan flattened the lateral subquery into a parallel sequential scan
# of the month with a hash join (150–240 ms at 1M rows instead of 1–3 ms of index probes). `OFFSET 0`
# is the standard fence against that flattening: measured +31 % pipeline throughput at 1M readings
# (BENCHMARKS.md).
LOAD_READINGS = f"""
SELECT r.* FROM unnest($1::text[], $2::bigint[], $3::bigint[]) AS w(driver_id, from_ms, after_offset)
CROSS JOIN LATERAL (
    SELECT t.event_id, t.driver_id, {ts_to_ms("t.ts")} AS ts_ms, t.event_type, t.lat, t.lon, t.speed_kmh,
           t.accel_ms2, t.heading, t.speed_limit_kmh, t.lateral_accel_ms2, t.data::text AS data,
           t.source_partition, t.source_offset, t.source_watermark_ms
    FROM telematics_events t
    WHERE t.driver_id = w.driver_id
      AND t.ts >= coalesce({ms_to_ts("w.from_ms")}, '-infinity')
      AND (w.after_offset IS NULL OR t.source_offset > w.after_offset)
    OFFSET 0  -- keeps the lateral subquery a per-driver index probe (see the comment above)
) r
ORDER BY r.driver_id, r.source_offset NULLS FIRST, r.ts_ms, r.event_id
"""

STORED_OFFSETS = "SELECT partition, next_offset FROM consumer_offsets WHERE consumer_group = $1 AND topic = $2"
STORED_LOG_TIMES = """
SELECT partition, watermark_ms FROM consumer_offsets
WHERE consumer_group = $1 AND topic = $2 AND watermark_ms IS NOT NULL
"""
OPEN_DRIVERS = "SELECT driver_id FROM driver_snapshots WHERE open ORDER BY driver_id"

STREAM_HEAD = "SELECT version FROM streams WHERE stream_id = $1"

READ_STREAM = f"""
SELECT event_id, stream_id, stream_version, event_type, {ts_to_ms("occurred_at")} AS occurred_at_ms,
       payload::text AS payload, request_id
FROM domain_events WHERE stream_id = $1 ORDER BY stream_version
"""
