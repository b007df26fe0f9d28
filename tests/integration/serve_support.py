"""Shared by the platform tests (API on Serve, WebSockets, ingest): settings with their own topics and
Redis database, drivers with ids unique to this run (Redis pub/sub channels are global across logical
databases and other test sessions use the demo ids), tokens, polling, and Ray's log files."""

from __future__ import annotations

import asyncio
import glob
import os
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit, urlunsplit

from config.settings import Settings
from deployments.api.auth import issue_token
from storage.kafka.clients import ensure_topics
from storage.postgres.drivers import NewDriver, insert_missing_drivers
from storage.postgres.pool import connect

T = TypeVar("T")
_RUN = f"{os.getpid()}{secrets.token_hex(2)}"


def run_driver_ids(count: int) -> list[str]:
    """Driver ids of this test run: `h3-<pid><hex>-<n>` (valid per domain.validation's pattern)."""
    return [f"h3-{_RUN}-{n}" for n in range(count)]


def settings_with_topics(base: Settings, kafka_bootstrap: str, **overrides) -> Settings:
    """`base` pointed at fresh events/DLQ topics on the session broker (created here) and Redis db 13."""
    events = f"telematics.events_{_RUN}_{secrets.token_hex(3)}"
    parts = urlsplit(base.redis_url)
    settings = base.with_overrides(kafka_bootstrap_servers=kafka_bootstrap, kafka_topic_events=events,
                                   kafka_topic_dlq=f"{events}.dlq", kafka_partitions=2,
                                   redis_url=urlunsplit(parts._replace(path="/13")), **overrides)
    ensure_topics(settings)
    return settings


def insert_drivers(settings: Settings, driver_ids: list[str]) -> None:
    async def insert() -> None:
        conn = await connect(settings)
        try:
            await insert_missing_drivers(
                conn, [NewDriver(d, "Test", d, f"{d}@example.test", "UTC") for d in driver_ids])
        finally:
            await conn.close()

    asyncio.run(insert())


def driver_token(settings: Settings, driver_id: str) -> str:
    return issue_token(settings, user_id=f"user-{driver_id}", role="driver", driver_id=driver_id)


def admin_token(settings: Settings) -> str:
    return issue_token(settings, user_id="user-admin", role="admin", driver_id=None)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def wait_for(probe: Callable[[], T | None], timeout_s: float, what: str, every_s: float = 0.25) -> T:
    """Poll `probe` until it returns something truthy; AssertionError naming `what` after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = probe()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out after {timeout_s:g} s waiting for {what}"
        time.sleep(every_s)


def ray_log_files() -> list[Path]:
    """Every log file of this Ray session (replicas' stderr lands in worker-*.err)."""
    import ray

    session_dir = ray._private.worker.global_worker.node.get_session_dir_path()
    return [Path(p) for p in glob.glob(os.path.join(session_dir, "logs", "**", "*"), recursive=True)
            if os.path.isfile(p)]


def log_lines_containing(needle: str) -> list[str]:
    found = []
    for path in ray_log_files():
        try:
            with path.open("r", encoding="utf-8", errors="replace") as f:
                found += [line for line in f if needle in line]
        except OSError:
            continue
    return found
