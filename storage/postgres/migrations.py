"""Forward-only SQL migrations: `migrations/NNNN_<verb>_<object>.sql`, applied in order, once.

Rules (docs/DATABASE.md): a file, once applied, is never edited (its checksum is recorded and a
change is an error naming the file); new files are numbered after the last applied one; each file
runs in its own transaction together with its `schema_migrations` row, so a failure leaves the
database at the previous version. The whole run holds a session advisory lock, so concurrent
runs (several replicas starting at once) are safe: the second waits, then finds nothing to do.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import asyncpg

# pg_advisory_lock(bigint) key for the whole run: the bytes "autoinsm" read as a big-endian int.
MIGRATION_LOCK_KEY = int.from_bytes(b"autoinsm", "big")

_FILENAME = re.compile(r"(?P<version>\d{4})_(?P<name>[a-z0-9]+(?:_[a-z0-9]+)*)\.sql")

_CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    text        NOT NULL PRIMARY KEY,
    name       text        NOT NULL,
    checksum   text        NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""


class MigrationError(Exception):
    """A migration set that must not be applied; the message names the file and what to do."""


@dataclass(frozen=True, slots=True)
class Migration:
    version: str  # "0003"
    name: str  # "create_pipeline_state"
    path: Path
    sql: str
    checksum: str  # sha256 hex of the file (line endings normalized to \n)

    @property
    def filename(self) -> str:
        return self.path.name


def load_migrations(migrations_dir: Path) -> list[Migration]:
    """Every `*.sql` file in the directory, ordered by version; other files are ignored.

    A `.sql` file whose name is not `NNNN_snake_case.sql`, or two files with one version, is an error.
    """
    if not migrations_dir.is_dir():
        raise MigrationError(f"migrations directory {migrations_dir} does not exist")
    found: dict[str, Migration] = {}
    for path in sorted(migrations_dir.iterdir()):
        if path.suffix != ".sql":
            continue
        match = _FILENAME.fullmatch(path.name)
        if match is None:
            raise MigrationError(
                f"{path.name}: malformed migration filename; expected NNNN_<verb>_<object>.sql "
                "(four digits, lowercase snake_case)"
            )
        version = match["version"]
        if version in found:
            raise MigrationError(f"{path.name}: version {version} is also used by {found[version].filename}")
        text = path.read_bytes().decode("utf-8").replace("\r\n", "\n")
        found[version] = Migration(
            version=version,
            name=match["name"],
            path=path,
            sql=text,
            checksum=hashlib.sha256(text.encode()).hexdigest(),
        )
    return [found[version] for version in sorted(found)]


async def apply_migrations(conn: asyncpg.Connection, migrations_dir: Path) -> list[str]:
    """Apply pending migrations; returns the versions applied by this call (empty: up to date).

    Must be called outside a transaction. Waits for a concurrent run to finish first.
    """
    migrations = load_migrations(migrations_dir)
    # A migration (an index build) may outlast the pool's statement_timeout, and waiting for a
    # concurrent run's lock must not time out either: lift it for this session, restore after.
    previous_timeout = await conn.fetchval("SELECT current_setting('statement_timeout')")
    await conn.execute("SET statement_timeout = 0")
    await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK_KEY)
    try:
        await conn.execute(_CREATE_TABLE)
        applied = {
            row["version"]: row for row in await conn.fetch("SELECT version, name, checksum FROM schema_migrations")
        }
        pending = _pending(migrations, applied)
        done: list[str] = []
        for migration in pending:
            await _apply_one(conn, migration)
            done.append(migration.version)
        return done
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK_KEY)
        await conn.execute("SELECT set_config('statement_timeout', $1, false)", previous_timeout)


async def applied_versions(conn: asyncpg.Connection) -> list[str]:
    """Versions recorded in schema_migrations (empty when the table does not exist yet)."""
    exists = await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL")
    if not exists:
        return []
    return [row["version"] for row in await conn.fetch("SELECT version FROM schema_migrations ORDER BY version")]


def _pending(migrations: list[Migration], applied: dict[str, asyncpg.Record]) -> list[Migration]:
    on_disk = {m.version: m for m in migrations}
    for version, row in sorted(applied.items()):
        if version not in on_disk:
            raise MigrationError(
                f"{version}_{row['name']}.sql is applied to the database but missing from the migrations "
                "directory: this checkout is older than the database"
            )
        migration = on_disk[version]
        if migration.checksum != row["checksum"]:
            raise MigrationError(
                f"{migration.filename} was changed after it was applied (checksum differs): migrations are "
                "forward-only; restore the file and add a new migration instead"
            )
    last_applied = max(applied, default=None)
    pending = [m for m in migrations if m.version not in applied]
    for migration in pending:
        if last_applied is not None and migration.version < last_applied:
            raise MigrationError(
                f"{migration.filename} is pending but {last_applied} is already applied: "
                "number new migrations after the last applied one"
            )
    return pending


async def _apply_one(conn: asyncpg.Connection, migration: Migration) -> None:
    try:
        async with conn.transaction():
            await conn.execute(migration.sql)  # simple query protocol: several statements are fine
            await conn.execute(
                "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                migration.version,
                migration.name,
                migration.checksum,
            )
    except asyncpg.PostgresError as error:
        raise MigrationError(f"{migration.filename} failed and was rolled back: {error}") from error
