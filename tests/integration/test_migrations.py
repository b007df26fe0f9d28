"""The migration runner and the schema it builds, on a real PostgreSQL (a fresh database per test)."""

from __future__ import annotations

import asyncio
import re
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from typer.testing import CliRunner

from autoins.cli import app
from config.settings import PROJECT_ROOT, Settings
from domain.partition_calendar import Month
from storage.postgres.migrations import MigrationError, applied_versions, apply_migrations, load_migrations
from storage.postgres.partitions import ensure_partitions
from storage.postgres.pool import connect, with_database

MIGRATIONS = PROJECT_ROOT / "migrations"
ALL_VERSIONS = [m.version for m in load_migrations(MIGRATIONS)]


@pytest.fixture
def fresh_settings(settings: Settings, fresh_database_url: str) -> Settings:
    return settings.with_overrides(database_url=fresh_database_url)


@pytest.fixture
async def fresh_conn(fresh_settings: Settings) -> AsyncIterator[asyncpg.Connection]:
    conn = await connect(fresh_settings, application_name="test-migrations")
    try:
        yield conn
    finally:
        await conn.close()


@pytest.fixture
def migrations_copy(tmp_path: Path) -> Path:
    target = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS, target)
    return target


async def test_migrating_twice_applies_every_file_once_then_nothing(fresh_conn):
    assert await apply_migrations(fresh_conn, MIGRATIONS) == ALL_VERSIONS
    assert await apply_migrations(fresh_conn, MIGRATIONS) == []
    assert await applied_versions(fresh_conn) == ALL_VERSIONS
    rows = await fresh_conn.fetch("SELECT version, name, checksum FROM schema_migrations ORDER BY version")
    assert [(r["version"], r["name"]) for r in rows] == [(m.version, m.name) for m in load_migrations(MIGRATIONS)]


async def test_two_concurrent_runs_both_succeed_and_apply_each_file_once(fresh_settings):
    first = await connect(fresh_settings, application_name="migrate-a")
    second = await connect(fresh_settings, application_name="migrate-b")
    try:
        results = await asyncio.gather(apply_migrations(first, MIGRATIONS), apply_migrations(second, MIGRATIONS))
        assert sorted(results, key=len) == [[], ALL_VERSIONS]
        assert await first.fetchval("SELECT count(*) FROM schema_migrations") == len(ALL_VERSIONS)
        # The session lock is released and the statement timeout restored afterwards.
        assert await first.fetchval("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'") == 0
        assert (
            await first.fetchval("SELECT current_setting('statement_timeout')")
            == await second.fetchval("SELECT current_setting('statement_timeout')")
            != "0"
        )
    finally:
        await first.close()
        await second.close()


async def test_an_applied_file_that_changed_is_an_error_naming_it(fresh_conn, migrations_copy):
    await apply_migrations(fresh_conn, migrations_copy)
    edited = migrations_copy / "0002_create_event_store.sql"
    edited.write_text(edited.read_text() + "\n-- a harmless-looking edit\n")
    with pytest.raises(MigrationError, match=re.escape("0002_create_event_store.sql was changed after it was applied")):
        await apply_migrations(fresh_conn, migrations_copy)


async def test_line_endings_alone_do_not_change_the_checksum(fresh_conn, migrations_copy):
    await apply_migrations(fresh_conn, migrations_copy)
    path = migrations_copy / "0001_create_telematics_events.sql"
    path.write_bytes(path.read_bytes().replace(b"\n", b"\r\n"))
    assert await apply_migrations(fresh_conn, migrations_copy) == []


@pytest.mark.parametrize("bad_name", ["1_create_things.sql", "0005-create-things.sql", "0005_CreateThings.sql"])
def test_a_malformed_filename_is_an_error_naming_it(migrations_copy, bad_name):
    (migrations_copy / bad_name).write_text("SELECT 1;")
    with pytest.raises(MigrationError, match=f"{bad_name}: malformed migration filename"):
        load_migrations(migrations_copy)


def test_two_files_with_one_version_are_an_error(migrations_copy):
    (migrations_copy / "0004_create_more_things.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationError, match="version 0004 is also used"):
        load_migrations(migrations_copy)


def test_files_that_are_not_sql_are_ignored(migrations_copy):
    (migrations_copy / "README.md").write_text("notes")
    assert [m.version for m in load_migrations(migrations_copy)] == ALL_VERSIONS


async def test_a_failing_file_is_rolled_back_and_not_recorded(fresh_conn, migrations_copy):
    (migrations_copy / "9998_create_broken_thing.sql").write_text(
        "CREATE TABLE half_done (id int);\nCREATE TABLE oops (id no_such_type);\n"
    )
    with pytest.raises(MigrationError, match=re.escape("9998_create_broken_thing.sql failed and was rolled back")):
        await apply_migrations(fresh_conn, migrations_copy)
    assert await applied_versions(fresh_conn) == ALL_VERSIONS
    assert await fresh_conn.fetchval("SELECT to_regclass('half_done')") is None


async def test_a_new_file_numbered_before_the_last_applied_is_refused(fresh_conn, migrations_copy):
    last = sorted(migrations_copy.glob("*.sql"))[-1]  # the newest migration becomes 9999 (order is kept)
    last.rename(migrations_copy / f"9999{last.name[4:]}")
    await apply_migrations(fresh_conn, migrations_copy)
    (migrations_copy / "9998_create_late_thing.sql").write_text("CREATE TABLE late_thing (id int);")
    with pytest.raises(
        MigrationError, match=re.escape("9998_create_late_thing.sql is pending but 9999 is already applied")
    ):
        await apply_migrations(fresh_conn, migrations_copy)


async def test_an_applied_file_missing_from_the_directory_is_an_error(fresh_conn, migrations_copy):
    await apply_migrations(fresh_conn, migrations_copy)
    (migrations_copy / "0004_create_read_models.sql").unlink()
    with pytest.raises(
        MigrationError, match=re.escape("0004_create_read_models.sql is applied to the database but missing")
    ):
        await apply_migrations(fresh_conn, migrations_copy)


EXPECTED_TABLES = {
    "telematics_events": "p",
    "domain_events": "p",
    "streams": "r",
    "driver_snapshots": "r",
    "consumer_offsets": "r",
    "drivers": "r",
    "users": "r",
    "policies": "r",
    "trips": "r",
    "risk_scores": "r",
    "devices": "r",
    "schema_migrations": "r",
    "maintenance_runs": "r",
    "token_versions": "r",
    "driver_privacy": "r",
    "private_trips": "r",
    "claims": "r",
    "disputes": "r",
    "premium_ledger": "r",
}

EXPECTED_INDEXES = {
    "telematics_events_pkey": "(event_id, ts)",
    "telematics_events_driver_id_ts_idx": "(driver_id, ts DESC)",
    "domain_events_pkey": "(event_id, occurred_at)",
    "domain_events_stream_id_version_idx": "(stream_id, stream_version)",
    "domain_events_harsh_by_stream_idx": "(stream_id, occurred_at DESC) WHERE",
    "streams_pkey": "(stream_id)",
    "driver_snapshots_pkey": "(driver_id)",
    "consumer_offsets_pkey": "(consumer_group, topic, partition)",
    "drivers_pkey": "(driver_id)",
    "drivers_email_key": "(email)",
    "users_pkey": "(user_id)",
    "users_username_key": "(username)",
    "users_driver_id_key": "(driver_id) WHERE",
    "policies_pkey": "(policy_id)",
    "policies_policy_number_key": "(policy_number)",
    "policies_driver_id_idx": "(driver_id)",
    "trips_pkey": "(trip_id)",
    "trips_driver_id_start_time_end_time_idx": "(driver_id, start_time, end_time)",
    "risk_scores_pkey": "(score_id)",
    "risk_scores_driver_id_scored_at_recorded_at_idx": "(driver_id, scored_at DESC, recorded_at DESC)",
    "devices_pkey": "(device_id)",
    "devices_key_digest_key": "(key_digest)",
    "devices_driver_id_idx": "(driver_id)",
    "maintenance_runs_pkey": "(run_id)",
    "maintenance_runs_task_started": "(task, started_at DESC)",
    "token_versions_pkey": "(user_id)",
    "driver_privacy_pkey": "(driver_id)",
    "private_trips_pkey": "(trip_id)",
    "private_trips_driver_id_idx": "(driver_id)",
    "claims_pkey": "(claim_id)",
    "claims_status_occurred_at_idx": "(status, occurred_at DESC)",
    "claims_driver_id_occurred_at_idx": "(driver_id, occurred_at DESC)",
    "disputes_pkey": "(dispute_id)",
    "disputes_episode_id_key": "(episode_id)",
    "disputes_driver_id_opened_at_idx": "(driver_id, opened_at DESC)",
    "disputes_open_idx": "(opened_at) WHERE",
    "premium_ledger_pkey": "(entry_id)",
    "premium_ledger_driver_id_stream_version_key": "(driver_id, stream_version)",
}


async def test_every_table_and_index_of_the_schema_exists(fresh_conn):
    await apply_migrations(fresh_conn, MIGRATIONS)
    tables = {
        r["relname"]: r["relkind"]
        for r in await fresh_conn.fetch(
            "SELECT relname, relkind::text FROM pg_class WHERE relnamespace = 'public'::regnamespace "
            "AND relkind IN ('r', 'p')"
        )
    }
    assert tables == EXPECTED_TABLES
    indexes = {
        r["indexname"]: r["indexdef"]
        for r in await fresh_conn.fetch("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'")
    }
    for name, columns in EXPECTED_INDEXES.items():
        assert columns in indexes[name], name
    harsh = indexes["domain_events_harsh_by_stream_idx"]
    for tag in (
        "harsh_braking_detected",
        "harsh_acceleration_detected",
        "harsh_cornering_detected",
        "speeding_detected",
    ):
        assert tag in harsh


async def test_indexes_of_a_partitioned_table_propagate_to_each_partition(fresh_conn):
    await apply_migrations(fresh_conn, MIGRATIONS)
    await ensure_partitions(fresh_conn, ["telematics_events", "domain_events"], [Month(2026, 11)])
    rows = await fresh_conn.fetch(
        """
        SELECT parent.relname AS parent_index, child.relname AS partition_index, pg_get_indexdef(child.oid) AS def
        FROM pg_inherits i
        JOIN pg_class child ON child.oid = i.inhrelid
        JOIN pg_class parent ON parent.oid = i.inhparent
        WHERE parent.relkind = 'I'
        """
    )
    by_parent = {r["parent_index"]: r["def"] for r in rows}
    assert (
        "ON public.telematics_events_y2026m11 USING btree (driver_id, ts DESC)"
        in by_parent["telematics_events_driver_id_ts_idx"]
    )
    assert "telematics_events_y2026m11" in by_parent["telematics_events_pkey"]
    assert "WHERE (event_type = ANY" in by_parent["domain_events_harsh_by_stream_idx"]
    assert set(by_parent) == {
        "telematics_events_pkey",
        "telematics_events_driver_id_ts_idx",
        "domain_events_pkey",
        "domain_events_stream_id_version_idx",
        "domain_events_harsh_by_stream_idx",
    }


READING_COLUMNS = "event_id, ts, driver_id, event_type, lat, lon, speed_kmh, accel_ms2, heading"


async def test_constraints_refuse_impossible_rows(fresh_conn):
    await apply_migrations(fresh_conn, MIGRATIONS)
    await ensure_partitions(fresh_conn, ["telematics_events"], [Month(2026, 1)])
    with pytest.raises(asyncpg.CheckViolationError):
        await fresh_conn.execute(
            f"INSERT INTO telematics_events ({READING_COLUMNS})"
            " VALUES (gen_random_uuid(), '2026-01-05Z', 'd1', 'position', 91, 0, 10, 0, 0)"
        )
    with pytest.raises(asyncpg.CheckViolationError):
        await fresh_conn.execute(
            "INSERT INTO users (user_id, username, password_hash, role) VALUES (gen_random_uuid(), 'u', 'h', 'driver')"
        )
    with pytest.raises(asyncpg.CheckViolationError, match="no partition"):
        await fresh_conn.execute(
            f"INSERT INTO telematics_events ({READING_COLUMNS})"
            " VALUES (gen_random_uuid(), '2030-01-05Z', 'd1', 'position', 0, 0, 10, 0, 0)"
        )


# -- the CLI ---------------------------------------------------------------------------------------


def _cli(args: list[str], settings: Settings, **env: str):
    environment = {
        "DATABASE_URL": settings.database_url,
        "ARCHIVE_DIR": str(settings.archive_dir),
        "LOG_JSON": "false",
        **env,
    }
    return CliRunner().invoke(app, args, env=environment)


def test_autoins_migrate_applies_then_reports_up_to_date(fresh_settings):
    first = _cli(["migrate"], fresh_settings)
    assert first.exit_code == 0, first.output
    assert "applied 0001_create_telematics_events.sql" in first.output
    assert "partitions: created" in first.output
    second = _cli(["migrate"], fresh_settings)
    assert second.exit_code == 0, second.output
    assert f"schema up to date ({len(ALL_VERSIONS)} migrations)" in second.output
    assert "partitions: all present" in second.output

    async def partitions_now() -> int:
        conn = await connect(fresh_settings)
        try:
            return await conn.fetchval(
                "SELECT count(*) FROM pg_inherits i JOIN pg_class p ON p.oid = i.inhparent WHERE p.relkind = 'p'"
            )
        finally:
            await conn.close()

    expected = 2 * (fresh_settings.retention_months + 1 + fresh_settings.partitions_ahead_months)
    assert asyncio.run(partitions_now()) == expected


def test_autoins_migrate_without_a_server_says_so_in_one_line(settings):
    result = _cli(["migrate"], settings, DATABASE_URL="postgresql://postgres@127.0.0.1:1/autoins")
    assert result.exit_code == 1
    assert "cannot connect to PostgreSQL at postgresql://postgres@127.0.0.1:1/autoins" in result.output
    assert "autoins stack up" in result.output
    assert "Traceback" not in result.output


def test_autoins_migrate_on_a_missing_database_says_how_to_create_it(settings):
    missing = with_database(settings.database_url, "autoins_missing_db_for_test")
    result = _cli(["partitions", "list"], settings, DATABASE_URL=missing)
    assert result.exit_code == 1
    assert "database 'autoins_missing_db_for_test' does not exist" in result.output
    assert "autoins db create" in result.output
    assert "Traceback" not in result.output


def test_autoins_partitions_before_migrate_asks_for_migrate(fresh_settings):
    result = _cli(["partitions", "ensure"], fresh_settings)
    assert result.exit_code == 1
    assert "run `autoins migrate`" in result.output


def test_autoins_db_create_creates_then_finds_the_database(base_settings):
    url = with_database(base_settings.database_url, "autoins_t_dbcreate")
    settings = base_settings.with_overrides(database_url=url)
    try:
        first = _cli(["db", "create"], settings)
        assert first.exit_code == 0, first.output
        assert "database autoins_t_dbcreate created" in first.output
        second = _cli(["db", "create"], settings)
        assert "already exists" in second.output
    finally:
        from storage.postgres.pool import drop_database

        asyncio.run(drop_database(url))
