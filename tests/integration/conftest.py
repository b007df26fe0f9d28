"""Integration fixtures: real PostgreSQL, Redis and Kafka (tansu). Each run gets its own database
(created here, dropped at the end) and its own topics; nothing is shared with `make demo`.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest

from config.settings import PROJECT_ROOT, Settings, load_settings
from storage.postgres.pool import connect, create_database_if_missing, drop_database, with_database


def _unique(prefix: str) -> str:
    return f"{prefix}_{os.getpid()}_{secrets.token_hex(3)}"


@pytest.fixture(scope="session")
def project_root() -> Path:
    return PROJECT_ROOT


@pytest.fixture(scope="session")
def base_settings() -> Settings:
    """Settings as the developer's environment gives them (stack.env included), test-friendly. No log ticks
    (docs/DOMAIN.md §3): many tests compare a faulty and a clean run reading one topic, and ticks written by one
    while idle would be log the other reads at another point; the tests of ticks turn them on."""
    return load_settings(PROJECT_ROOT, log_json=False, log_tick_idle_s=0)


@pytest.fixture(scope="session")
def database_url(base_settings: Settings) -> Iterator[str]:
    """A fresh, empty database on the configured server, dropped after the session."""
    import asyncio

    url = with_database(base_settings.database_url, _unique("autoins_test"))
    asyncio.run(create_database_if_missing(url))
    yield url
    asyncio.run(drop_database(url))


@pytest.fixture(scope="session")
def settings(base_settings: Settings, database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return base_settings.with_overrides(
        database_url=database_url,
        archive_dir=tmp_path_factory.mktemp("archive"),
        db_pool_size=2,
        db_max_overflow=4,
    )


@pytest.fixture
async def conn(settings: Settings) -> AsyncIterator[asyncpg.Connection]:
    connection = await connect(settings, application_name="autoins-tests")
    try:
        yield connection
    finally:
        await connection.close()


@pytest.fixture
def fresh_database_url(base_settings: Settings) -> Iterator[str]:
    """A database of its own for one test (migration and concurrency tests)."""
    import asyncio

    url = with_database(base_settings.database_url, _unique("autoins_t"))
    asyncio.run(create_database_if_missing(url))
    yield url
    asyncio.run(drop_database(url))


# -- Kafka (tansu) ---------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A private tansu broker on a free port for the whole session, stopped at the end.
    Memory storage: it starts empty, so tests create their topics (see `kafka_topics`)."""
    from autoins.stack import free_tcp_port, start_tansu, stop_process
    from autoins.stack.errors import ServerStartFailed

    data_dir = tmp_path_factory.mktemp("tansu")
    for attempt in range(3):  # a free port can be taken between the probe and the bind
        port = free_tcp_port()
        try:
            broker = start_tansu(port, data_dir)
            break
        except ServerStartFailed:
            if attempt == 2:
                raise
    try:
        yield f"127.0.0.1:{port}"
    finally:
        stop_process(broker)


@pytest.fixture
def kafka_topics(kafka_bootstrap: str, base_settings: Settings) -> dict[str, str]:
    """Uniquely named events and DLQ topics, created on the session broker. Returns the settings
    overrides that point at them: `settings.with_overrides(**kafka_topics)`."""
    from storage.kafka.clients import ensure_topics

    events = _unique("telematics.events")
    overrides = {
        "kafka_bootstrap_servers": kafka_bootstrap,
        "kafka_topic_events": events,
        "kafka_topic_dlq": f"{events}.dlq",
    }
    ensure_topics(base_settings.with_overrides(**overrides))
    return overrides


# -- migrated session database (shared) -------------------------------------------------------------


@pytest.fixture(scope="session")
def migrated_settings(settings: Settings) -> Settings:
    """`settings` whose session database has every migration applied and the partition window ensured
    (retention cutoff .. PARTITIONS_AHEAD_MONTHS around now). Idempotent; tests needing an empty
    database keep using `fresh_database_url`."""
    import asyncio

    from tests.integration.fixtures_db import migrate_database

    asyncio.run(migrate_database(settings))
    return settings


# -- Ray and a simulated fleet (pipeline tests) ------------------------------------------------------


@pytest.fixture(scope="session")
def ray_session():
    """One Ray runtime for the whole session (starting Ray costs seconds; never `ray stop`)."""
    import ray

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ.setdefault("RAY_SERVE_ENABLE_HA_PROXY", "1")  # PERF_NOTES: the ingress the product uses
    # HAProxy's own metrics/stats listeners default to fixed ports (9101, 8404): concurrent sessions collide.
    from autoins.stack.processes import free_tcp_port

    os.environ.setdefault("RAY_SERVE_HAPROXY_METRICS_PORT", str(free_tcp_port()))
    os.environ.setdefault("RAY_SERVE_HAPROXY_STATS_PORT", str(free_tcp_port()))
    # A deleted app's replicas stay reachable 30 s for load balancers to deregister them: tests need not wait.
    os.environ.setdefault("RAY_SERVE_DIRECT_INGRESS_MIN_DRAINING_PERIOD_S", "1")
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        namespace=f"autoins-test-{os.getpid()}",
        object_store_memory=400 * 1024 * 1024,
        log_to_driver=bool(os.environ.get("AUTOINS_TEST_RAY_LOGS")),
        configure_logging=False,
    )
    yield ray
    ray.shutdown()


@pytest.fixture(scope="session")
def serve_session(ray_session) -> Iterator[str]:
    """Ray Serve on a free loopback port for the whole session; yields its base URL. Tests deploy their
    apps (by name, config.names) and delete them when done; one Serve per Ray cluster."""
    from ray import serve

    from autoins.stack.processes import free_tcp_port

    port = free_tcp_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    yield f"http://127.0.0.1:{port}"
    serve.shutdown()


@pytest.fixture(scope="session")
def fleet():
    """40 drivers over 12 hours of simulated driving (~55k readings), as wire JSON, and the driver ids."""
    from tests.integration.pipeline_support import simulated_payloads

    return simulated_payloads(drivers=40, duration_s=12 * 3600, seed=21)
