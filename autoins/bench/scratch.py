"""The scratch world of one benchmark run: two migrated databases, a broker, a Redis, unique topics.

Everything carries the run id and is removed by `Scratch.close()` — also after Ctrl-C or a failure
half-way through, so each step records what it created before the next one starts. By default the
broker and Redis are private processes (tansu with memory storage, a cache-only redis-server on free
ports): the benchmark never touches the demo's topics, keys or Pub/Sub channels, and a private
broker's memory dies with it. `configured` uses the services of the settings instead (the topics are
deleted at the end; the Redis keys the pipeline writes are not).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import asyncpg
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from autoins.errors import UserFacingError
from autoins.stack import ManagedProcess, free_tcp_port, start_tansu, stop_process
from autoins.stack.binaries import redis_server
from autoins.stack.errors import StackError
from autoins.stack.redis_server import start_redis
from config.settings import Settings
from storage.kafka.clients import admin_config, ensure_topics
from storage.postgres.migrations import apply_migrations
from storage.postgres.partitions import ensure_window
from storage.postgres.pool import connect, create_database_if_missing, drop_database, with_database

SERVICE_START_TIMEOUT_S = 30.0


def new_run_id() -> str:
    return f"{os.getpid()}_{secrets.token_hex(3)}"


@dataclass
class Scratch:
    """What one run created; `close()` undoes it in reverse order and never raises."""

    base: Settings
    run_id: str = field(default_factory=new_run_id)
    work_dir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="autoins-bench-")))
    databases: list[str] = field(default_factory=list)
    processes: list[ManagedProcess] = field(default_factory=list)
    bootstrap: str = ""
    redis_url: str = ""
    shared_topics: list[str] = field(default_factory=list)  # on a configured broker: deleted by close()

    # -- PostgreSQL --------------------------------------------------------------------------------

    async def postgres_version(self) -> str:
        """`PostgreSQL 15.x` of the configured server; one clear line when it cannot be reached."""
        url = with_database(self.base.database_dsn, "postgres")
        shown = self.base.redacted()["database_url"]
        try:
            conn = await asyncpg.connect(url, timeout=self.base.db_connect_timeout_s)
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
            raise UserFacingError(f"cannot connect to PostgreSQL at {shown}: {_first_line(error)}; "
                                  "run `autoins stack up`") from None
        try:
            return " ".join((await conn.fetchval("SELECT version()")).split()[:2])
        finally:
            await conn.close()

    async def create_database(self, role: str, now: datetime) -> str:
        """A new database with every migration applied and the partition window around `now` ensured."""
        url = with_database(self.base.database_dsn, f"autoins_bench_{role}_{self.run_id}")
        self.databases.append(url)
        await create_database_if_missing(url)
        conn = await connect(self.base.with_overrides(database_url=url), application_name="autoins-bench")
        try:
            await apply_migrations(conn, self.base.migrations_dir)
            await ensure_window(conn, now, self.base.retention_months, self.base.partitions_ahead_months)
        finally:
            await conn.close()
        return url

    # -- broker and Redis --------------------------------------------------------------------------

    def start_broker(self, private: bool) -> str:
        if not private:
            self.bootstrap = self.base.kafka_bootstrap_servers
            return self.bootstrap
        proc = self._start(lambda port: start_tansu(port, self.work_dir), "the Kafka broker (tansu)")
        self.bootstrap = f"127.0.0.1:{proc[1]}"
        return self.bootstrap

    def start_redis(self, private: bool) -> str:
        if not private:
            self.redis_url = self.base.redis_url
            return self.redis_url
        try:
            binary = redis_server(None, self.work_dir)
        except StackError as error:
            raise UserFacingError(f"cannot start a private Redis: {error}; or pass --redis configured") from None
        proc = self._start(
            lambda port: start_redis("127.0.0.1", port, self.work_dir, binary, SERVICE_START_TIMEOUT_S), "Redis"
        )
        self.redis_url = f"redis://127.0.0.1:{proc[1]}/0"
        return self.redis_url

    def _start(self, launch, what: str) -> tuple[ManagedProcess, int]:
        for attempt in range(3):  # a free port can be taken between the probe and the bind
            port = free_tcp_port()
            try:
                proc = launch(port)
            except StackError as error:
                if attempt == 2:
                    raise UserFacingError(f"cannot start {what}: {error}") from None
                continue
            self.processes.append(proc)
            return proc, port
        raise AssertionError("unreachable")

    def create_topics(self, settings: Settings) -> None:
        if settings.kafka_bootstrap_servers == self.base.kafka_bootstrap_servers:
            self.shared_topics += [settings.kafka_topic_events, settings.kafka_topic_dlq]
        try:
            ensure_topics(settings, timeout_s=10.0)
        except KafkaException as error:
            raise UserFacingError(f"cannot create topics on Kafka at {settings.kafka_bootstrap_servers}: "
                                  f"{_first_line(error)}") from None

    def pids(self) -> dict[str, int]:
        """Private service processes by role (CPU accounting)."""
        return {("broker" if "tansu" in p.name else "redis"): p.pid for p in self.processes}

    # -- teardown ----------------------------------------------------------------------------------

    def close(self) -> list[str]:
        """Drop the databases, delete shared topics, stop the private services; problems as lines."""
        problems: list[str] = []
        for url in reversed(self.databases):
            try:
                asyncio.run(drop_database(url))
            except Exception as error:  # keep cleaning up
                problems.append(f"could not drop {url.rsplit('/', 1)[-1]}: {_first_line(error)}")
        self.databases.clear()
        if self.shared_topics:
            with contextlib.suppress(Exception):
                admin = AdminClient(admin_config(self.base))
                for future in admin.delete_topics(self.shared_topics, operation_timeout=10).values():
                    future.result(timeout=15)
            self.shared_topics.clear()
        for proc in reversed(self.processes):
            try:
                stop_process(proc)
            except Exception as error:
                problems.append(f"could not stop {proc.name} (pid {proc.pid}): {_first_line(error)}")
        self.processes.clear()
        shutil.rmtree(self.work_dir, ignore_errors=True)
        return problems


def _first_line(error: BaseException) -> str:
    text = str(error.args[0].str() if error.args and hasattr(error.args[0], "str") else error).strip()
    return text.splitlines()[0] if text else type(error).__name__
