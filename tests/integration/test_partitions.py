"""Monthly partitions, retention and restore on a real PostgreSQL (a fresh, migrated database per test).

`now` is fixed (NOW); nothing here reads the clock.
"""

from __future__ import annotations

import asyncio
import csv
import gzip
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import asyncpg
import numpy as np
import pytest

from config.settings import PROJECT_ROOT, Settings
from domain.partition_calendar import Month, partition_name, window_months
from storage.postgres import archive as archive_module
from storage.postgres.archive import RETENTION_LOCK_KEY, ArchiveError, export_partition, plan_retention, restore, retain
from storage.postgres.migrations import apply_migrations
from storage.postgres.partitions import (
    PartitionCache,
    attached_months,
    ensure_for_timestamps,
    ensure_partitions,
    ensure_window,
    list_partitions,
)
from storage.postgres.pool import connect

NOW = datetime(2026, 3, 15, 12, 0, tzinfo=UTC)
RETENTION_MONTHS = 12  # cutoff: 2025-03
TABLES = ("telematics_events", "domain_events")


@pytest.fixture
def db_settings(settings: Settings, fresh_database_url: str, tmp_path: Path) -> Settings:
    return settings.with_overrides(database_url=fresh_database_url, archive_dir=tmp_path / "archive")


@pytest.fixture
async def db(db_settings: Settings) -> AsyncIterator[asyncpg.Connection]:
    conn = await connect(db_settings, application_name="test-partitions")
    try:
        await apply_migrations(conn, PROJECT_ROOT / "migrations")
        yield conn
    finally:
        await conn.close()


async def _where(conn: asyncpg.Connection, table: str, event_id: uuid.UUID) -> str:
    return await conn.fetchval(f"SELECT tableoid::regclass::text FROM {table} WHERE event_id = $1", event_id)


async def _insert_readings(conn: asyncpg.Connection, instants: list[datetime]) -> list[uuid.UUID]:
    await ensure_for_timestamps(conn, "telematics_events", instants)
    rows = []
    for i, ts in enumerate(instants):
        data = {"note": 'quote " comma , newline \n done', "i": i} if i % 3 == 0 else None
        rows.append(
            (
                uuid.uuid4(),
                ts,
                f"driver-{i % 4}",
                "position",
                48.1 + i / 7,
                11.5 - i / 3,
                0.1 * i,
                -3.3,
                (i * 37) % 360,
                50.0 if i % 2 else None,
                None if i % 2 else 1.25,
                data,
            )
        )
    # executemany, not COPY: the pool's jsonb codec is text-format, which binary COPY cannot use.
    await conn.executemany(
        "INSERT INTO telematics_events (event_id, ts, driver_id, event_type, lat, lon, speed_kmh, accel_ms2, heading,"
        " speed_limit_kmh, lateral_accel_ms2, data) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        rows,
    )
    return [row[0] for row in rows]


async def _insert_domain_events(conn: asyncpg.Connection, instants: list[datetime]) -> list[uuid.UUID]:
    await ensure_for_timestamps(conn, "domain_events", instants)
    ids = [uuid.uuid4() for _ in instants]
    await conn.executemany(
        "INSERT INTO domain_events (event_id, stream_id, stream_version, event_type, payload, occurred_at)"
        " VALUES ($1, $2, $3, $4, $5, $6)",
        [
            (event_id, "driver-1", n + 1, "harsh_braking_detected", {"decel_ms2": -4.5, "n": n}, ts)
            for n, (event_id, ts) in enumerate(zip(ids, instants, strict=True))
        ],
    )
    return ids


def _spread(month: Month, count: int) -> list[datetime]:
    """`count` instants inside the month, including its first and last microsecond."""
    span = month.end - month.start - timedelta(microseconds=1)
    return [month.start + span * i / (count - 1) for i in range(count)]


async def _rows(conn: asyncpg.Connection, table: str, month: Month) -> list[asyncpg.Record]:
    key = "ts" if table == "telematics_events" else "occurred_at"
    return await conn.fetch(
        f"SELECT * FROM {table} WHERE {key} >= $1 AND {key} < $2 ORDER BY event_id", month.start, month.end
    )


# -- month boundaries -------------------------------------------------------------------------------


async def test_rows_either_side_of_a_month_boundary_land_in_different_partitions(db):
    # A +14:00 session time zone must not shift the bounds: they are written with an explicit UTC offset.
    await db.execute("SET TimeZone = 'Pacific/Kiritimati'")
    last_of_january = datetime(2026, 1, 31, 23, 59, 59, 999999, tzinfo=UTC)
    first_of_february = datetime(2026, 2, 1, tzinfo=UTC)
    ids = await _insert_readings(db, [last_of_january, first_of_february])
    assert await _where(db, "telematics_events", ids[0]) == "telematics_events_y2026m01"
    assert await _where(db, "telematics_events", ids[1]) == "telematics_events_y2026m02"


async def test_a_plus_14_offset_timestamp_lands_in_its_utc_month(db):
    kiribati = timezone(timedelta(hours=14))
    early_on_the_first = datetime(2026, 2, 1, 5, 0, tzinfo=kiribati)  # 2026-01-31T15:00Z
    ids = await _insert_readings(db, [early_on_the_first])
    assert await _where(db, "telematics_events", ids[0]) == "telematics_events_y2026m01"
    events = await _insert_domain_events(db, [early_on_the_first])
    assert await _where(db, "domain_events", events[0]) == "domain_events_y2026m01"


# -- creating partitions ----------------------------------------------------------------------------


async def test_ensure_window_creates_every_month_from_the_cutoff_to_the_months_ahead_once(db):
    created = await ensure_window(db, NOW, RETENTION_MONTHS, 3)
    expected = window_months(NOW, RETENTION_MONTHS, 3)
    assert len(created) == 2 * len(expected)
    for table in TABLES:
        assert sorted(await attached_months(db, table)) == expected
    assert await ensure_window(db, NOW, RETENTION_MONTHS, 3) == []


async def test_old_and_future_months_are_created_on_demand_concurrently_exactly_once(db_settings, db):
    five_years_ago = NOW - timedelta(days=5 * 365)
    next_winter = NOW + timedelta(days=300)
    conns = [await connect(db_settings) for _ in range(6)]
    try:

        async def both_tables(conn: asyncpg.Connection) -> list[str]:
            instants = [five_years_ago, next_winter, five_years_ago]
            return [name for table in TABLES for name in await ensure_for_timestamps(conn, table, instants)]

        results = await asyncio.gather(*(both_tables(conn) for conn in conns))
    finally:
        await asyncio.gather(*(conn.close() for conn in conns))
    created = [name for names in results for name in names]
    assert sorted(created) == sorted(
        partition_name(table, Month.of(instant)) for table in TABLES for instant in (five_years_ago, next_winter)
    )
    ids = await _insert_readings(db, [five_years_ago, next_winter])
    assert await _where(db, "telematics_events", ids[0]) == "telematics_events_y2021m03"
    assert await _where(db, "telematics_events", ids[1]) == "telematics_events_y2027m01"


async def test_creating_a_month_does_not_wait_for_an_open_insert_transaction(db_settings, db):
    await ensure_partitions(db, ["telematics_events"], [Month(2026, 3)])
    writer = await connect(db_settings)
    try:
        transaction = writer.transaction()
        await transaction.start()
        await _insert_readings(writer, [NOW])  # holds ROW EXCLUSIVE on the parent until commit
        created = await asyncio.wait_for(ensure_for_timestamps(db, "telematics_events", [NOW + timedelta(days=60)]), 5)
        assert created == ["telematics_events_y2026m05"]
        await transaction.commit()
    finally:
        await writer.close()


async def test_a_partition_cache_skips_the_database_for_known_months(db_settings):
    cache = PartitionCache()
    conn = await connect(db_settings)
    await apply_migrations(conn, PROJECT_ROOT / "migrations")
    assert await ensure_for_timestamps(conn, "telematics_events", [NOW], cache) == ["telematics_events_y2026m03"]
    await conn.close()
    # A closed connection proves the known month costs no query at all.
    assert await ensure_for_timestamps(conn, "telematics_events", [NOW + timedelta(hours=1)], cache) == []
    with pytest.raises(asyncpg.InterfaceError):
        await ensure_for_timestamps(conn, "telematics_events", [NOW + timedelta(days=40)], cache)


async def test_epoch_millisecond_batches_work_as_lists_and_numpy_arrays(db):
    first_of_april_ms = int(datetime(2026, 4, 1, tzinfo=UTC).timestamp() * 1000)
    batch = np.array([first_of_april_ms - 1, first_of_april_ms, first_of_april_ms + 5], dtype=np.int64)
    assert await ensure_for_timestamps(db, "domain_events", batch) == [
        "domain_events_y2026m03",
        "domain_events_y2026m04",
    ]
    assert await ensure_for_timestamps(db, "domain_events", batch.tolist()) == []


async def test_a_detached_leftover_inside_the_window_is_reattached_by_ensure(db):
    await ensure_partitions(db, ["telematics_events"], [Month(2026, 3)])
    ids = await _insert_readings(db, [NOW])
    await db.execute("ALTER TABLE telematics_events DETACH PARTITION telematics_events_y2026m03")
    assert await ensure_window(db, NOW, 1, 0, tables=["telematics_events"]) == [
        "telematics_events_y2026m02",
        "telematics_events_y2026m03",
    ]
    assert await _where(db, "telematics_events", ids[0]) == "telematics_events_y2026m03"


async def test_list_partitions_shows_ranges_sizes_and_detached_leftovers(db):
    await ensure_partitions(db, TABLES, [Month(2026, 2), Month(2026, 3)])
    await db.execute("ALTER TABLE domain_events DETACH PARTITION domain_events_y2026m02")
    infos = {info.partition: info for info in await list_partitions(db)}
    assert set(infos) == {
        "telematics_events_y2026m02",
        "telematics_events_y2026m03",
        "domain_events_y2026m02",
        "domain_events_y2026m03",
    }
    march = infos["telematics_events_y2026m03"]
    assert march.attached and march.month == Month(2026, 3) and march.size_bytes > 0
    assert "('2026-03-01 00:00:00+00') TO ('2026-04-01 00:00:00+00')" in march.bound
    assert not infos["domain_events_y2026m02"].attached
    assert infos["domain_events_y2026m02"].bound is None


# -- retention ---------------------------------------------------------------------------------------

OLD = Month(2024, 1)
JUST_BEFORE_CUTOFF = Month(2025, 2)
CUTOFF = Month(2025, 3)
CURRENT = Month(2026, 3)


async def _populate(db: asyncpg.Connection) -> None:
    for month in (OLD, JUST_BEFORE_CUTOFF, CUTOFF, CURRENT):
        await _insert_readings(db, _spread(month, 25))
    for month in (OLD, CUTOFF):
        await _insert_domain_events(db, _spread(month, 10))


def _read_archive(path: Path) -> tuple[list[str], list[list[str]]]:
    with gzip.open(path, "rt", encoding="utf-8", newline="") as text:
        reader = csv.reader(text)
        return next(reader), list(reader)


async def test_retention_archives_exactly_the_rows_it_drops_and_keeps_the_window(db, tmp_path):
    await _populate(db)
    before = {(t, m): await _rows(db, t, m) for t in TABLES for m in (OLD, JUST_BEFORE_CUTOFF, CUTOFF, CURRENT)}
    report = await retain(db, NOW, RETENTION_MONTHS, tmp_path)
    assert report.cutoff == CUTOFF
    assert sorted(report.dropped) == sorted(
        [
            "telematics_events_y2024m01",
            "telematics_events_y2025m02",
            "domain_events_y2024m01",
        ]
    )
    for archived in report.archived:
        dropped_rows = before[(archived.table, archived.month)]
        header, rows = _read_archive(archived.archive_file)
        assert archived.rows == len(rows) == len(dropped_rows) > 0
        assert header[0] == "event_id"
        assert {uuid.UUID(row[0]) for row in rows} == {r["event_id"] for r in dropped_rows}
        manifest = json.loads(archived.manifest_file.read_text())
        assert manifest["row_count"] == len(rows)
        assert manifest["range_start"] == archived.month.start.isoformat()
        assert [c["name"] for c in manifest["columns"]] == header
        assert await _rows(db, archived.table, archived.month) == []
        assert archived.archive_file == tmp_path / archived.table / f"{archived.partition}.csv.gz"
    # The cutoff month and the current month are untouched.
    for table in TABLES:
        for month in (CUTOFF, CURRENT):
            assert await _rows(db, table, month) == before[(table, month)]
    assert sorted(await attached_months(db, "telematics_events")) == [CUTOFF, CURRENT]


async def test_rerunning_retention_is_a_noop(db, tmp_path):
    await _populate(db)
    await retain(db, NOW, RETENTION_MONTHS, tmp_path)
    files = sorted(p.name for p in tmp_path.rglob("*"))
    again = await retain(db, NOW, RETENTION_MONTHS, tmp_path)
    assert again.archived == () and again.skipped == ()
    assert sorted(p.name for p in tmp_path.rglob("*")) == files


async def test_retention_of_one_month_never_touches_the_current_month(db, tmp_path):
    current_rows = await _insert_readings(db, _spread(CURRENT, 5))
    await _insert_readings(db, _spread(CURRENT.plus(-1), 5))
    report = await retain(db, NOW, 1, tmp_path)
    assert report.archived == ()
    assert len(await _rows(db, "telematics_events", CURRENT)) == len(current_rows)
    with pytest.raises(ValueError, match=">= 1"):
        await retain(db, NOW, 0, tmp_path)


async def test_a_run_interrupted_after_detach_is_completed_by_the_next(db, tmp_path):
    await _populate(db)
    rows = await _rows(db, "telematics_events", OLD)
    await db.execute("ALTER TABLE telematics_events DETACH PARTITION telematics_events_y2024m01")
    plan = await plan_retention(db, NOW, RETENTION_MONTHS)
    assert [(p.partition, p.attached) for p in plan if p.month == OLD and p.table == "telematics_events"] == [
        ("telematics_events_y2024m01", False)
    ]
    report = await retain(db, NOW, RETENTION_MONTHS, tmp_path)
    assert "telematics_events_y2024m01" in report.dropped
    assert await db.fetchval("SELECT to_regclass('telematics_events_y2024m01')") is None
    _, archived = _read_archive(tmp_path / "telematics_events" / "telematics_events_y2024m01.csv.gz")
    assert len(archived) == len(rows)


async def test_a_run_interrupted_after_archiving_reuses_the_identical_archive(db, tmp_path):
    await _populate(db)
    await db.execute("ALTER TABLE domain_events DETACH PARTITION domain_events_y2024m01")
    first = await export_partition(db, "domain_events", OLD, tmp_path)
    report = await retain(db, NOW, RETENTION_MONTHS, tmp_path)
    [again] = [a for a in report.archived if a.partition == "domain_events_y2024m01"]
    assert again.reused and again.sha256 == first.sha256 and again.archive_file == first.archive_file
    assert await db.fetchval("SELECT to_regclass('domain_events_y2024m01')") is None


async def test_restore_brings_the_rows_back_and_twice_adds_nothing(db, tmp_path):
    await _populate(db)
    before = await _rows(db, "telematics_events", OLD)
    before_events = await _rows(db, "domain_events", OLD)
    await retain(db, NOW, RETENTION_MONTHS, tmp_path)
    archive = tmp_path / "telematics_events" / "telematics_events_y2024m01.csv.gz"
    assert await restore(db, archive) == len(before)
    assert await _rows(db, "telematics_events", OLD) == before  # every column, byte for byte
    assert await restore(db, archive) == 0
    assert await _rows(db, "telematics_events", OLD) == before
    manifest = tmp_path / "domain_events" / "domain_events_y2024m01.manifest.json"
    assert await restore(db, manifest) == len(before_events)
    assert await _rows(db, "domain_events", OLD) == before_events


async def test_a_second_export_of_a_month_never_overwrites_the_first_archive(db, tmp_path):
    await _populate(db)
    await retain(db, NOW, RETENTION_MONTHS, tmp_path)
    first = tmp_path / "telematics_events" / "telematics_events_y2024m01.csv.gz"
    original = first.read_bytes()
    await restore(db, first)
    await _insert_readings(db, [OLD.start + timedelta(days=3)])  # a straggler arrives for the old month
    report = await retain(db, NOW, RETENTION_MONTHS, tmp_path)
    [second] = report.archived
    assert second.archive_file.name == "telematics_events_y2024m01.2.csv.gz"
    assert second.rows == 26 and not second.reused
    assert first.read_bytes() == original


async def test_restore_refuses_a_damaged_archive(db, tmp_path):
    await _populate(db)
    await retain(db, NOW, RETENTION_MONTHS, tmp_path)
    archive = tmp_path / "telematics_events" / "telematics_events_y2024m01.csv.gz"
    damaged = bytearray(archive.read_bytes())
    damaged[len(damaged) // 2] ^= 0xFF
    archive.write_bytes(bytes(damaged))
    with pytest.raises(ArchiveError, match="checksum mismatch"):
        await restore(db, archive)
    assert await db.fetchval("SELECT to_regclass('telematics_events_y2024m01')") is None


def test_autoins_partitions_restore_is_one_command(db_settings, tmp_path):
    from typer.testing import CliRunner

    from autoins.cli import app

    async def prepare() -> Path:
        conn = await connect(db_settings)
        try:
            await apply_migrations(conn, PROJECT_ROOT / "migrations")
            await _insert_readings(conn, _spread(OLD, 7))
            await retain(conn, NOW, RETENTION_MONTHS, tmp_path)
        finally:
            await conn.close()
        return tmp_path / "telematics_events" / "telematics_events_y2024m01.csv.gz"

    archive = asyncio.run(prepare())
    env = {"DATABASE_URL": db_settings.database_url, "LOG_JSON": "false"}
    result = CliRunner().invoke(app, ["partitions", "restore", str(archive)], env=env)
    assert result.exit_code == 0, result.output
    assert "restored 7 rows into telematics_events_y2024m01" in result.output
    listed = CliRunner().invoke(app, ["partitions", "list"], env=env)
    assert listed.exit_code == 0, listed.output
    assert "telematics_events_y2024m01" in listed.output
    missing = CliRunner().invoke(app, ["partitions", "restore", str(tmp_path / "nope.csv.gz")], env=env)
    assert missing.exit_code == 1 and "no such archive file" in missing.output


async def test_a_second_concurrent_retention_run_is_refused_at_once(db_settings, db, tmp_path):
    await _populate(db)
    other = await connect(db_settings)
    try:
        await other.execute("SELECT pg_advisory_lock($1)", RETENTION_LOCK_KEY)
        with pytest.raises(ArchiveError, match="another retention run is in progress"):
            await retain(db, NOW, RETENTION_MONTHS, tmp_path)
    finally:
        await other.close()
    assert len(await _rows(db, "telematics_events", OLD)) == 25


async def test_retention_gives_way_to_a_long_transaction_instead_of_stalling_inserts(
    db_settings, db, tmp_path, monkeypatch
):
    monkeypatch.setattr(archive_module, "_DETACH_LOCK_TIMEOUT_MS", 100)
    monkeypatch.setattr(archive_module, "_DETACH_ATTEMPTS", 2)
    await _populate(db)
    reader = await connect(db_settings)
    try:
        transaction = reader.transaction()
        await transaction.start()
        await reader.fetchval("SELECT count(*) FROM telematics_events")  # holds ACCESS SHARE until commit
        with pytest.raises(ArchiveError, match="cannot detach telematics_events_y2024m01"):
            await retain(db, NOW, RETENTION_MONTHS, tmp_path, tables=["telematics_events"])
        await transaction.rollback()
    finally:
        await reader.close()
    assert sorted(await attached_months(db, "telematics_events")) == [OLD, JUST_BEFORE_CUTOFF, CUTOFF, CURRENT]
    report = await retain(db, NOW, RETENTION_MONTHS, tmp_path, tables=["telematics_events"])
    assert len(report.archived) == 2
