"""storage.kafka.producer and `autoins simulate` against the private tansu broker and a migrated
database of their own: what is produced comes back whole, in per-key order; a dead broker is an
error within the flush timeout; the CLI produces exactly the simulator's stream and registers drivers."""

from __future__ import annotations

import asyncio
import csv
import json
import time
import uuid
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
from typer.testing import CliRunner

import autoins.simulate as simulate_module
from autoins.cli import app
from config.settings import Settings
from domain.simulator import Population, simulate_all
from domain.simulator.realism import PHONE
from storage.kafka.clients import consumer_config
from storage.kafka.producer import ProduceError, ReadingProducer
from storage.postgres.migrations import apply_migrations
from storage.postgres.partitions import ensure_window
from storage.postgres.pool import connect


def consume_all(settings: Settings, topic: str, expected: int, timeout_s: float = 20.0) -> list:
    """Every message of `topic` from the beginning, by assign (no group join), until `expected` arrived
    and a short quiet period shows nothing more is coming."""
    config = consumer_config(settings, group_id=f"test-{uuid.uuid4().hex[:8]}", log_level=2)
    consumer = Consumer(config)
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        messages: list = []
        deadline = time.monotonic() + timeout_s
        quiet_until = None
        while time.monotonic() < deadline:
            batch = consumer.consume(10_000, timeout=0.5)
            messages.extend(m for m in batch if m.error() is None)
            if len(messages) >= expected:
                quiet_until = quiet_until or time.monotonic() + 1.0
                if time.monotonic() > quiet_until:
                    break
        return messages
    finally:
        consumer.close()


@pytest.fixture
def topic_settings(settings: Settings, kafka_topics: dict[str, str]) -> Settings:
    return settings.with_overrides(**kafka_topics)


def test_produced_messages_come_back_whole_keyed_and_in_order_per_key(topic_settings):
    keys = [f"driver{k:04d}" for k in range(1, 21)]
    sent = [(keys[i % 20], f"{keys[i % 20]}:{i // 20}".encode()) for i in range(6_000)]
    with ReadingProducer(topic_settings) as producer:
        assert producer.produce_many([v for _, v in sent], [k for k, _ in sent]) == 6_000
        assert producer.flush(20.0) == 6_000
        assert producer.pending == 0

    got = consume_all(topic_settings, topic_settings.kafka_topic_events, 6_000)
    assert len(got) == 6_000
    by_key: dict[str, list[tuple[int, int, int]]] = defaultdict(list)
    for m in got:
        key = m.key().decode()
        by_key[key].append((m.partition(), m.offset(), int(m.value().decode().split(":")[1])))
    assert sorted(by_key) == keys
    for key, rows in by_key.items():
        assert len({p for p, _, _ in rows}) == 1, f"{key} spread over partitions"
        assert [n for _, _, n in sorted(rows)] == list(range(300)), f"{key} out of order"


def test_produce_sends_headers_to_any_topic(topic_settings):
    dlq = topic_settings.kafka_topic_dlq
    with ReadingProducer(topic_settings) as producer:
        producer.produce(dlq, b'{"bad": true}', b"driver0001", [("reason", b"invalid_json")])
        producer.produce(dlq, b"x", None, {"reason": b"not_an_object"})
        assert producer.flush(10.0) == 2
    got = consume_all(topic_settings, dlq, 2)
    assert sorted((m.value(), m.headers()) for m in got) == [
        (b"x", [("reason", b"not_an_object")]),
        (b'{"bad": true}', [("reason", b"invalid_json")]),
    ]


def test_flush_raises_within_its_timeout_when_the_broker_is_unreachable(settings):
    producer = ReadingProducer(settings.with_overrides(kafka_bootstrap_servers="127.0.0.1:1"), log_level=2)
    producer.produce_many([b"a", b"b", b"c"], ["k1", "k2", "k1"])
    started = time.monotonic()
    with pytest.raises(ProduceError, match=r"3 message\(s\) still undelivered after 1 s to Kafka at 127.0.0.1:1"):
        producer.flush(1.0)
    assert time.monotonic() - started < 3.0
    assert producer.close() == 3  # dropped without waiting for librdkafka's message timeout


def test_produce_many_refuses_mismatched_keys(settings):
    producer = ReadingProducer(settings.with_overrides(kafka_bootstrap_servers="127.0.0.1:1"), log_level=2)
    try:
        with pytest.raises(ValueError, match="2 payloads but 1 keys"):
            producer.produce_many([b"a", b"b"], ["k"])
    finally:
        producer.close()


# -- autoins simulate ------------------------------------------------------------------------------


@pytest.fixture
def migrated_url(settings: Settings, fresh_database_url: str) -> str:
    async def migrate() -> None:
        conn = await connect(settings.with_overrides(database_url=fresh_database_url))
        try:
            await apply_migrations(conn, settings.migrations_dir)
            await ensure_window(conn, datetime.now(UTC), settings.retention_months, settings.partitions_ahead_months)
        finally:
            await conn.close()

    asyncio.run(migrate())
    return fresh_database_url


@pytest.fixture
def cli_base_env(monkeypatch, tmp_path: Path, kafka_topics: dict[str, str]) -> dict[str, str]:
    """The CLI's environment without a database: the private broker, unique topics, tmp_path as cwd
    (no .env or stack.env there; data_dir `.autoins` lands in tmp_path)."""
    monkeypatch.chdir(tmp_path)
    env = {key.upper(): value for key, value in kafka_topics.items()} | {"LOG_JSON": "false"}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


@pytest.fixture
def cli_env(monkeypatch, cli_base_env: dict[str, str], migrated_url: str) -> dict[str, str]:
    monkeypatch.setenv("DATABASE_URL", migrated_url)
    return cli_base_env | {"DATABASE_URL": migrated_url}


def _window_with_readings(population: Population, seed: int, duration_s: int) -> tuple[int, int]:
    """A past start (on a 10-minute grid) whose window holds trip starts, and the reading count there."""
    base = (int(time.time() * 1000) - 3 * 86_400_000) // 3_600_000 * 3_600_000
    for k in range(6 * 48):
        start_ms = base + k * 600_000
        count = len(simulate_all(population, start_ms, duration_s, seed))
        if count:
            return start_ms, count
    raise AssertionError("no trips in two days")  # pragma: no cover


def test_simulate_produces_the_simulators_stream_and_registers_the_drivers(cli_env, monkeypatch, tmp_path,
                                                                            settings):
    population = Population.generate(5, seed=3)
    start_ms, expected = _window_with_readings(population, 3, 600)
    # The default start is "the window ends TRIP_TAIL_ALLOWANCE_S before now": pin now accordingly.
    fake_now = start_ms + 600_000 + simulate_module.TRIP_TAIL_ALLOWANCE_S * 1000
    monkeypatch.setattr(simulate_module, "_clock_ms", lambda: fake_now)

    result = CliRunner().invoke(app, ["simulate", "--drivers", "5", "--duration", "10m", "--seed", "3"])

    assert result.exit_code == 0, result.output
    assert f"produced {expected:,} readings" in result.output
    topic_settings = settings.with_overrides(kafka_bootstrap_servers=cli_env["KAFKA_BOOTSTRAP_SERVERS"])
    got = consume_all(topic_settings, cli_env["KAFKA_TOPIC_EVENTS"], expected)
    assert len(got) == expected
    assert {m.key().decode() for m in got} <= set(population.driver_ids)

    async def drivers() -> list:
        conn = await connect(settings.with_overrides(database_url=cli_env["DATABASE_URL"]))
        try:
            return await conn.fetch("SELECT driver_id, timezone, email, is_active FROM drivers ORDER BY driver_id")
        finally:
            await conn.close()

    rows = asyncio.run(drivers())
    truth = population.truth_table()
    assert [(r["driver_id"], r["timezone"], r["email"], r["is_active"]) for r in rows] == [
        (t.driver_id, t.timezone, f"{t.driver_id}@example.test", True) for t in truth]

    truth_csv = tmp_path / ".autoins" / "simulations" / "3-5.truth.csv"
    assert f"ground truth: {Path('.autoins') / 'simulations' / '3-5.truth.csv'}" in result.output
    with truth_csv.open() as f:
        table = list(csv.DictReader(f))
    assert [(r["driver_id"], r["timezone"]) for r in table] == [(t.driver_id, t.timezone) for t in truth]
    assert float(table[0]["expected_claims_per_year"]) == truth[0].expected_claims_per_year

    episodes_csv = tmp_path / ".autoins" / "simulations" / "3-5.episodes.csv"  # the true harsh episodes
    with episodes_csv.open() as f:
        assert next(csv.reader(f)) == ["driver_id", "trip_no", "kind", "start_ms", "end_ms", "peak_mps2", "observed"]

    again = CliRunner().invoke(app, ["simulate", "--drivers", "5", "--duration", "10m", "--seed", "3"])
    assert again.exit_code == 0, again.output
    assert "(0 newly registered)" in again.output


def test_simulate_in_phone_realism_produces_what_a_phone_records_and_its_true_episodes(
    cli_env, monkeypatch, tmp_path, settings
):
    population = Population.generate(5, seed=3)
    start_ms, _exact = _window_with_readings(population, 3, 600)
    expected = len(simulate_all(population, start_ms, 600, 3, realism=PHONE))
    fake_now = start_ms + 600_000 + simulate_module.TRIP_TAIL_ALLOWANCE_S * 1000
    monkeypatch.setattr(simulate_module, "_clock_ms", lambda: fake_now)

    result = CliRunner().invoke(app, ["simulate", "--drivers", "5", "--duration", "10m", "--seed", "3",
                                      "--realism", "phone"])

    assert result.exit_code == 0, result.output
    assert f"produced {expected:,} readings" in result.output
    topic_settings = settings.with_overrides(kafka_bootstrap_servers=cli_env["KAFKA_BOOTSTRAP_SERVERS"])
    got = [json.loads(m.value()) for m in consume_all(topic_settings, cli_env["KAFKA_TOPIC_EVENTS"], expected)]
    assert len(got) == expected and any(m["heading"] is None for m in got)  # unknown fields are null
    assert (tmp_path / ".autoins" / "simulations" / "3-5-phone.episodes.csv").is_file()
    assert (tmp_path / ".autoins" / "simulations" / "3-5-phone.truth.csv").is_file()


@pytest.mark.parametrize("duration", ["garbage", "0", "-5m", "10x"])
def test_simulate_refuses_a_bad_duration_in_one_line(cli_base_env, duration):
    result = CliRunner().invoke(app, ["simulate", "--drivers", "5", "--duration", duration])
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"error: --duration {duration!r}"), result.output


def test_simulate_reports_unreachable_kafka_in_one_line(cli_env, monkeypatch):
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:1")
    result = CliRunner().invoke(app, ["simulate", "--drivers", "2", "--duration", "1m"])
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: cannot reach Kafka at 127.0.0.1:1"), result.output


def test_simulate_asks_for_migrations_on_an_empty_database(cli_base_env, monkeypatch, fresh_database_url):
    monkeypatch.setenv("DATABASE_URL", fresh_database_url)  # created, never migrated
    result = CliRunner().invoke(app, ["simulate", "--drivers", "2", "--duration", "1m"])
    assert result.exit_code == 1
    assert result.output.strip() == (
        "error: table drivers does not exist: the schema is not migrated; run `autoins migrate`")
