"""`autoins migrate`, `autoins partitions ensure|retain|list|restore`, `autoins db create`.

Each command parses settings once, opens one connection, and turns every expected failure (server
down, database missing, schema not migrated, a changed migration, a damaged archive) into one line
and a non-zero exit. `now` is read from the clock here, at the edge, and passed down.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, TypeVar

import asyncpg
import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn
from rich.table import Table

from autoins.cli_support import console, run, settings_from_env, user_errors
from autoins.errors import UserFacingError
from config.settings import Settings
from domain.partition_calendar import window_months
from storage.postgres.archive import (
    ArchiveError,
    Retirement,
    archive_paths,
    plan_retention,
    read_manifest,
    restore,
    retain,
)
from storage.postgres.migrations import Migration, MigrationError, applied_versions, apply_migrations, load_migrations
from storage.postgres.partitions import TABLE_NAMES, PartitionError, ensure_window, list_partitions
from storage.postgres.pool import connect, create_database_if_missing

db_app = typer.Typer(no_args_is_help=True)
partitions_app = typer.Typer(no_args_is_help=True)
T = TypeVar("T")


# -- plumbing --------------------------------------------------------------------------------------


def _shown_url(settings: Settings) -> str:
    return str(settings.redacted()["database_url"])


@asynccontextmanager
async def connected(settings: Settings) -> AsyncIterator[asyncpg.Connection]:
    url = _shown_url(settings)
    try:
        conn = await connect(settings, application_name="autoins-cli")
    except asyncpg.InvalidCatalogNameError:
        raise UserFacingError(
            f"database {settings.database_name!r} does not exist at {url}: run `autoins db create` "
            "(or `autoins migrate --create-db`)"
        ) from None
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
        raise UserFacingError(
            f"cannot connect to PostgreSQL at {url}: {_reason(error)}; run `autoins stack up`"
        ) from None
    try:
        yield conn
    finally:
        await conn.close()


def _reason(error: BaseException) -> str:
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return text or type(error).__name__


def _run_db(body: Callable[[], Awaitable[T]]) -> T:
    """Run a database coroutine, translating our storage errors into one-line user errors."""
    try:
        return run(body())
    except (MigrationError, PartitionError, ArchiveError) as error:
        raise UserFacingError(str(error)) from None
    except (asyncpg.PostgresError, asyncpg.InterfaceError) as error:
        raise UserFacingError(f"PostgreSQL: {_reason(error)}") from None
    except (OSError, TimeoutError) as error:
        raise UserFacingError(_reason(error)) from None


async def _require_schema(conn: asyncpg.Connection) -> None:
    for table in TABLE_NAMES:
        if await conn.fetchval("SELECT to_regclass($1) IS NULL", table):
            raise UserFacingError(f"table {table} does not exist: the schema is not migrated; run `autoins migrate`")


def _print_created(created: list[str], settings: Settings, now: datetime) -> None:
    months = window_months(now, settings.retention_months, settings.partitions_ahead_months)
    span = f"{months[0]} … {months[-1]}"
    if not created:
        console.print(f"partitions: all present for {span}", highlight=False)
        return
    per_table = {table: sum(1 for name in created if name.startswith(f"{table}_y")) for table in TABLE_NAMES}
    counts = ", ".join(f"{table} {count}" for table, count in per_table.items() if count)
    console.print(f"partitions: created {len(created)} ({counts}) for {span}", highlight=False)


# -- autoins migrate -------------------------------------------------------------------------------


@user_errors
def migrate_command(
    create_db: Annotated[bool, typer.Option("--create-db", help="Create the database first if it is missing.")] = False,
) -> None:
    """Apply pending migrations in order, then ensure the partition window."""
    settings = settings_from_env()
    names = {m.version: m.filename for m in _load(settings.migrations_dir)}

    async def body() -> None:
        if create_db:
            await _create_database(settings)
        async with connected(settings) as conn:
            applied = await apply_migrations(conn, settings.migrations_dir)
            if applied:
                for version in applied:
                    console.print(f"applied {names[version]}", highlight=False)
            else:
                console.print(f"schema up to date ({len(names)} migrations)", highlight=False)
            now = datetime.now(UTC)
            created = await ensure_window(conn, now, settings.retention_months, settings.partitions_ahead_months)
            _print_created(created, settings, now)

    _run_db(body)


def _load(migrations_dir: Path) -> list[Migration]:
    try:
        return load_migrations(migrations_dir)
    except MigrationError as error:
        raise UserFacingError(str(error)) from None


# -- autoins db ------------------------------------------------------------------------------------


async def _create_database(settings: Settings) -> bool:
    try:
        created = await create_database_if_missing(settings.database_dsn, timeout_s=settings.db_connect_timeout_s)
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
        raise UserFacingError(
            f"cannot connect to PostgreSQL at {_shown_url(settings)}: {_reason(error)}; run `autoins stack up`"
        ) from None
    console.print(f"database {settings.database_name} {'created' if created else 'already exists'}", highlight=False)
    return created


@db_app.command("create")
@user_errors
def db_create() -> None:
    """Create the configured database (DATABASE_URL) if it does not exist."""
    settings = settings_from_env()
    _run_db(lambda: _create_database(settings))


# -- autoins partitions ----------------------------------------------------------------------------


@partitions_app.command("ensure")
@user_errors
def partitions_ensure() -> None:
    """Create missing monthly partitions from the retention cutoff to PARTITIONS_AHEAD_MONTHS ahead."""
    settings = settings_from_env()

    async def body() -> None:
        async with connected(settings) as conn:
            await _require_schema(conn)
            now = datetime.now(UTC)
            created = await ensure_window(conn, now, settings.retention_months, settings.partitions_ahead_months)
            _print_created(created, settings, now)

    _run_db(body)


@partitions_app.command("list")
@user_errors
def partitions_list() -> None:
    """Every partition: month range, attached or not, estimated rows, size."""
    settings = settings_from_env()

    async def body() -> None:
        async with connected(settings) as conn:
            await _require_schema(conn)
            infos = await list_partitions(conn)
        table = Table("partition", "UTC month", "state", "rows (est.)", "size")
        for info in infos:
            table.add_row(
                info.partition,
                str(info.month) if info.month else (info.bound or "?"),
                "attached" if info.attached else "[yellow]detached[/yellow]",
                "?" if info.row_estimate is None else f"{info.row_estimate:,}",
                _size(info.size_bytes),
            )
        console.print(table)

    _run_db(body)


def _size(size_bytes: int) -> str:
    size = float(size_bytes)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size_bytes} B"  # pragma: no cover


@partitions_app.command("retain")
@user_errors
def partitions_retain(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would be retired; change nothing.")] = False,
) -> None:
    """Detach, archive (ARCHIVE_DIR) and drop partitions older than RETENTION_MONTHS."""
    settings = settings_from_env()
    archive_dir = settings.archive_dir.resolve()

    async def body() -> None:
        async with connected(settings) as conn:
            await _require_schema(conn)
            now = datetime.now(UTC)
            plan = await plan_retention(conn, now, settings.retention_months)
            if dry_run or not plan:
                _print_plan(plan, settings.retention_months)
                return
            with Progress(
                SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), console=console
            ) as progress:
                task = progress.add_task("retiring partitions", total=3 * len(plan))

                def on_step(item: Retirement, step: str) -> None:
                    progress.update(task, advance=1, description=f"{item.partition}: {step}")

                report = await retain(conn, now, settings.retention_months, archive_dir, on_step=on_step)
        summary = Table("partition", "rows", "archive", title=f"retired (keeping {report.cutoff} onwards)")
        for item in report.archived:
            note = " (identical archive existed)" if item.reused else ""
            summary.add_row(item.partition, f"{item.rows:,}", f"{item.archive_file}{note}")
        console.print(summary)
        for skipped in report.skipped:
            reason = escape(str(skipped.reason))
            console.print(f"[yellow]skipped[/yellow] {skipped.partition}: {reason}", highlight=False)

    _run_db(body)


def _print_plan(plan: list[Retirement], retention_months: int) -> None:
    if not plan:
        console.print(f"nothing to retire (retention {retention_months} months)", highlight=False)
        return
    table = Table("partition", "month", "state", title="would retire")
    for item in plan:
        table.add_row(item.partition, str(item.month), "attached" if item.attached else "detached (interrupted run)")
    console.print(table)


@partitions_app.command("restore")
@user_errors
def partitions_restore(
    archive_file: Annotated[Path, typer.Argument(help="A <partition>.csv.gz archive or its .manifest.json.")],
) -> None:
    """Load an archived partition back (re-creating it if needed); restoring twice adds nothing."""
    settings = settings_from_env()

    async def body() -> None:
        _, manifest_file = archive_paths(archive_file)
        manifest = read_manifest(manifest_file)
        async with connected(settings) as conn:
            await _require_schema(conn)
            inserted = await restore(conn, archive_file)
        console.print(
            f"restored {inserted:,} rows into {manifest.partition} "
            f"({manifest.row_count - inserted:,} of {manifest.row_count:,} were already present)",
            highlight=False,
        )

    _run_db(body)


__all__ = ["db_app", "migrate_command", "partitions_app"]


def require_current_schema(settings: Settings) -> None:
    """Refuse to start the pipeline on a database that lacks migrations this code needs (one line)."""

    async def check() -> None:
        async with connected(settings) as conn:
            applied = set(await applied_versions(conn))
        pending = [m for m in _load(settings.migrations_dir) if m.version not in applied]
        if pending:
            names = ", ".join(f"{m.version}_{m.name}" for m in pending)
            raise UserFacingError(f"the database lacks {len(pending)} migration(s) ({names}): run `autoins migrate`")

    _run_db(check)
