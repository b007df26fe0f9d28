"""Shared by the pipeline tests: a migrated database per test, Ray once per session, simulated
readings produced into a test topic, and the queries that check what was stored."""

from __future__ import annotations

import asyncio
import os
import secrets
from dataclasses import dataclass

import asyncpg
from confluent_kafka import Producer

from config.settings import Settings
from domain.simulator import Population, simulate, to_wire_json
from storage.kafka.clients import producer_config
from storage.postgres.migrations import apply_migrations
from storage.postgres.partitions import ensure_window
from storage.postgres.pool import connect, create_database_if_missing, drop_database, with_database

START_MS = 1_780_000_000_000  # fixed device time (2026-05-28): tests pin the clock they pass


async def make_migrated_database(base: Settings, now) -> str:
    url = with_database(base.database_url, f"autoins_p_{os.getpid()}_{secrets.token_hex(3)}")
    await create_database_if_missing(url)
    conn = await connect(base.with_overrides(database_url=url))
    try:
        await apply_migrations(conn, base.migrations_dir)
        await ensure_window(conn, now, base.retention_months, base.partitions_ahead_months)
    finally:
        await conn.close()
    return url


def drop(url: str) -> None:
    asyncio.run(drop_database(url))


@dataclass(frozen=True)
class Produced:
    count: int
    drivers: list[str]
    payloads: list[bytes]


def simulated_payloads(
    drivers: int, duration_s: int, seed: int, start_ms: int = START_MS
) -> tuple[list[bytes], list[str]]:
    population = Population.generate(drivers, seed=seed)
    payloads: list[bytes] = []
    for batch in simulate(population, start_ms, duration_s=duration_s, seed=seed):
        payloads.extend(to_wire_json(batch))
    return payloads, list(population.driver_ids)


def produce(settings: Settings, payloads: list[bytes], keys: list[bytes], topic: str | None = None) -> None:
    producer = Producer(producer_config(settings))
    for value, key in zip(payloads, keys, strict=True):
        while True:
            try:
                producer.produce(topic or settings.kafka_topic_events, value=value, key=key)
                break
            except BufferError:
                producer.poll(0.1)
        producer.poll(0)
    remaining = producer.flush(60)
    assert remaining == 0, f"{remaining} messages not delivered"


def key_of(payload: bytes) -> bytes:
    """The driver id of a wire JSON payload, as the Kafka key (a driver's readings share a partition)."""
    import msgspec

    try:
        return msgspec.json.decode(payload)["driver_id"].encode()
    except Exception:
        return b"poison"


async def stored_counts(url: str) -> dict:
    conn = await asyncpg.connect(url)
    try:
        return {
            "readings": await conn.fetchval("SELECT count(*) FROM telematics_events"),
            "distinct_readings": await conn.fetchval("SELECT count(DISTINCT event_id) FROM telematics_events"),
            "events": await conn.fetchval("SELECT count(*) FROM domain_events"),
            "trips": await conn.fetchval("SELECT count(*) FROM trips"),
        }
    finally:
        await conn.close()


async def domain_event_set(url: str) -> set[tuple]:
    """(event_id, stream_id, version, type, payload) of every stored domain event."""
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            "SELECT event_id, stream_id, stream_version, event_type, payload::text AS payload FROM domain_events"
        )
    finally:
        await conn.close()
    return {(r["event_id"], r["stream_id"], r["stream_version"], r["event_type"], r["payload"]) for r in rows}
