"""The storage factories against the real services: pool tuning reaches the server, codecs work,
Redis answers through the factory, topics are created once with the configured partitions."""

from __future__ import annotations

import uuid

from confluent_kafka.admin import AdminClient

from storage.kafka.clients import admin_config, ensure_topics
from storage.postgres.pool import acquire, create_pool
from storage.redis.client import create_redis


async def test_pool_applies_the_plans_tuning_on_every_connection(settings):
    pool = await create_pool(settings, application_name="autoins-test-pool")
    try:
        assert pool.get_min_size() == settings.db_pool_size
        assert pool.get_max_size() == settings.db_pool_size + settings.db_max_overflow
        async with acquire(pool, settings) as conn:
            timeout = await conn.fetchval("SHOW statement_timeout")
            name = await conn.fetchval("SHOW application_name")
            echoed = await conn.fetchval("SELECT $1::jsonb", {"speed_kmh": 42.5, "tags": ["a"]})
        assert timeout == f"{settings.db_statement_timeout_ms // 1000}s"
        assert name == "autoins-test-pool"
        assert echoed == {"speed_kmh": 42.5, "tags": ["a"]}
    finally:
        await pool.close()


async def test_redis_factory_talks_to_the_configured_server(settings):
    redis = create_redis(settings)
    key = f"autoins:test:{uuid.uuid4()}"
    try:
        assert await redis.ping()
        await redis.set(key, b"v", ex=10)
        assert await redis.get(key) == b"v"
    finally:
        await redis.delete(key)
        await redis.aclose()


def test_topics_are_created_once_with_the_configured_partitions(settings, kafka_bootstrap):
    suffix = uuid.uuid4().hex[:8]
    topic_settings = settings.with_overrides(
        kafka_bootstrap_servers=kafka_bootstrap,
        kafka_topic_events=f"events-{suffix}",
        kafka_topic_dlq=f"events-{suffix}.dlq",
        kafka_partitions=6,
    )
    assert sorted(ensure_topics(topic_settings)) == sorted([f"events-{suffix}", f"events-{suffix}.dlq"])
    assert ensure_topics(topic_settings) == []
    metadata = AdminClient(admin_config(topic_settings)).list_topics(timeout=10)
    assert len(metadata.topics[f"events-{suffix}"].partitions) == 6


def test_topics_command_reports_an_unreachable_broker_in_one_line(monkeypatch, tmp_path):
    from typer.testing import CliRunner

    from autoins.cli import app

    monkeypatch.chdir(tmp_path)  # no stack.env here: the environment variable decides
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:1")
    result = CliRunner().invoke(app, ["topics"])
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1
    assert lines[0].startswith("error: cannot create topics on Kafka at 127.0.0.1:1")


def test_topics_command_creates_the_configured_topics(monkeypatch, tmp_path, kafka_bootstrap):
    from typer.testing import CliRunner

    from autoins.cli import app

    suffix = uuid.uuid4().hex[:8]
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", kafka_bootstrap)
    monkeypatch.setenv("KAFKA_TOPIC_EVENTS", f"cli-{suffix}")
    monkeypatch.setenv("KAFKA_TOPIC_DLQ", f"cli-{suffix}.dlq")
    first = CliRunner().invoke(app, ["topics"])
    second = CliRunner().invoke(app, ["topics"])
    assert first.exit_code == 0, first.output
    assert f"cli-{suffix}: created" in first.output
    assert f"cli-{suffix}: exists" in second.output
