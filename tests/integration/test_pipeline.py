"""The ingest pipeline on real Kafka (tansu), PostgreSQL, Redis and Ray (DESIGN.md §2 guarantees).

Every test gets its own database and topics; one Ray runtime serves the session.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from datetime import UTC, datetime

import asyncpg
import msgspec
import pytest
from ray.exceptions import ActorUnavailableError

from autoins.pipeline import durable_messages, start_pipeline, stop_pipeline, wait_until_drained
from domain.claims import claim_id
from tests.integration.pipeline_support import (
    START_MS,
    domain_event_set,
    drop,
    key_of,
    make_migrated_database,
    produce,
    stored_counts,
)
from tests.unit.domain_helpers import Drive

pytestmark = pytest.mark.timeout(900)
NOW = datetime.now(UTC)


@pytest.fixture
def pipeline_settings(base_settings, kafka_topics):
    url = asyncio.run(make_migrated_database(base_settings, NOW))
    settings = base_settings.with_overrides(
        database_url=url,
        kafka_consumer_group=f"test-{uuid.uuid4().hex[:8]}",
        kafka_partitions=4,
        consumer_batch_size=5_000,
        num_shards=2,
        num_persistence=1,
        kafka_num_consumers=1,
        db_pool_size=1,
        db_max_overflow=2,
        log_json=True,
        **kafka_topics,
    )
    yield settings
    drop(url)


def run_pipeline(settings, expected_total: int, timeout_s: float = 120.0) -> dict:
    async def go():
        pipeline = start_pipeline(settings, prefix=f"{uuid.uuid4().hex[:6]}-")
        try:
            return await wait_until_drained(pipeline, expected_total, timeout_s)
        finally:
            await stop_pipeline(pipeline)

    return asyncio.run(go())


def test_every_produced_reading_is_stored_exactly_once(ray_session, pipeline_settings, fleet):
    payloads, _drivers = fleet
    produce(pipeline_settings, payloads, [key_of(p) for p in payloads])
    status = run_pipeline(pipeline_settings, len(payloads))
    counts = asyncio.run(stored_counts(pipeline_settings.database_url))
    assert counts["readings"] == counts["distinct_readings"] == len(payloads)
    assert counts["events"] > 0 and counts["trips"] > 0
    assert status["dead_lettered"] == 0 and status["lag"] == 0


def test_domain_events_do_not_depend_on_pipeline_shape(ray_session, base_settings, kafka_topics, fleet):
    """1 consumer × 1 shard × 1 persistence with small batches vs 2 × 4 × 2 with large ones."""
    payloads, _drivers = fleet
    shapes = [
        {"kafka_num_consumers": 1, "num_shards": 1, "num_persistence": 1, "consumer_batch_size": 1_000},
        {"kafka_num_consumers": 2, "num_shards": 4, "num_persistence": 2, "consumer_batch_size": 8_000},
    ]
    results = []
    for shape in shapes:
        url = asyncio.run(make_migrated_database(base_settings, NOW))
        try:
            settings = base_settings.with_overrides(
                database_url=url,
                kafka_consumer_group=f"shape-{uuid.uuid4().hex[:8]}",
                db_pool_size=1,
                db_max_overflow=2,
                **kafka_topics,
                **shape,
            )
            if not results:
                produce(settings, payloads, [key_of(p) for p in payloads])
            run_pipeline(settings, len(payloads))
            results.append((asyncio.run(domain_event_set(url)), asyncio.run(stored_counts(url))))
        finally:
            drop(url)
    (events_a, counts_a), (events_b, counts_b) = results
    assert counts_a["readings"] == counts_b["readings"] == len(payloads)
    assert len(events_a) > 50
    assert events_a == events_b


POISON = [
    (b"{not json", "invalid_json"),
    (b'{"event_id": 5, "driver_id": "driver9999"}', None),
    (b"[1, 2, 3]", "not_an_object"),
    (b"x" * (10 * 1024 * 1024), "payload_too_large"),
]


def test_poison_messages_reach_the_dlq_with_their_reason_while_valid_traffic_flows(
    ray_session, pipeline_settings, fleet
):
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    from storage.kafka.clients import consumer_config

    payloads, _ = fleet
    valid = payloads[:5_000]
    now_ms = int(NOW.timestamp() * 1000)
    good = msgspec_json(valid[0])
    crafted = [
        _with(good, lat=123.0),
        _with(good, speed_kmh=-4),
        _with(good, ts=now_ms + 86_400_000),
        _with(good, type="teleport"),
        _with(good, accel_ms2="fast"),
    ]
    poison = [p for p, _ in POISON] + crafted
    mixed = valid[:2_500] + poison + valid[2_500:]
    produce(pipeline_settings, mixed, [key_of(p) for p in mixed])
    status = run_pipeline(pipeline_settings, len(mixed))
    assert status["dead_lettered"] == len(poison)
    counts = asyncio.run(stored_counts(pipeline_settings.database_url))
    assert counts["readings"] == len(valid)

    config = consumer_config(pipeline_settings, group_id=f"dlq-reader-{uuid.uuid4().hex[:6]}")
    reader = Consumer(config)
    dlq = pipeline_settings.kafka_topic_dlq
    partitions = reader.list_topics(dlq, timeout=10).topics[dlq].partitions
    reader.assign([TopicPartition(dlq, p, OFFSET_BEGINNING) for p in partitions])
    letters = []
    for _ in range(100):
        letters.extend(m for m in reader.consume(50, timeout=0.5) if m.error() is None)
        if len(letters) >= len(poison):
            break
    reader.close()
    reasons = sorted(dict(m.headers())["reason"].decode() for m in letters)
    assert len(letters) == len(poison)
    for letter in letters:
        headers = dict(letter.headers())
        assert {"reason", "message", "source_topic", "source_partition", "source_offset"} <= headers.keys()
        assert headers["source_topic"].decode() == pipeline_settings.kafka_topic_events
    assert reasons.count("invalid_json") == 1 and "payload_too_large" in reasons
    assert {"lat_out_of_range", "speed_out_of_range", "ts_in_future", "unknown_event_type", "wrong_type"} <= set(
        reasons
    )
    assert sorted(len(m.value()) for m in letters)[-1] == 10 * 1024 * 1024  # original bytes kept


def msgspec_json(payload: bytes) -> dict:
    import msgspec

    return msgspec.json.decode(payload)


def _with(base: dict, **changes) -> bytes:
    import msgspec

    return msgspec.json.encode({**base, "event_id": str(uuid.uuid4()), **changes})


@pytest.mark.parametrize("victim", ["consumer", "shard", "persistence", "scorer", "supervisor"])
def test_sigkill_mid_stream_loses_and_duplicates_nothing(ray_session, base_settings, kafka_topics, fleet, victim):
    """Kill one actor's process while it works; after Ray restarts it the stored readings are exact and
    the domain events equal a fault-free run's (computed here on a second database)."""
    payloads, _ = fleet
    urls = [asyncio.run(make_migrated_database(base_settings, NOW)) for _ in range(2)]
    shape = {"kafka_num_consumers": 1, "num_shards": 2, "num_persistence": 1, "consumer_batch_size": 2_000}
    try:
        faulty, clean = (
            base_settings.with_overrides(
                database_url=url,
                kafka_consumer_group=f"kill-{uuid.uuid4().hex[:8]}",
                db_pool_size=1,
                db_max_overflow=2,
                **kafka_topics,
                **shape,
            )
            for url in urls
        )
        produce(faulty, payloads, [key_of(p) for p in payloads])

        async def with_kill():
            pipeline = start_pipeline(faulty, prefix=f"k{uuid.uuid4().hex[:5]}-")
            try:
                target = {
                    "consumer": pipeline.consumers[0],
                    "shard": pipeline.shards[0],
                    "persistence": pipeline.persisters[0],
                    "scorer": pipeline.scorer,
                    "supervisor": pipeline.supervisor,
                }[victim]
                await _wait_for_progress(pipeline, at_least=len(payloads) // 5)
                probe = target.status if victim in ("consumer", "supervisor") else target.stats

                async def pid_of() -> int:
                    # the pipeline may drain before the killed actor has finished restarting (the consumers, not
                    # the supervisor, move the data): ask again while Ray says it is restarting
                    deadline = time.monotonic() + 120
                    while True:
                        try:
                            answer = await probe.remote()
                            break
                        except ActorUnavailableError:
                            if time.monotonic() > deadline:
                                raise
                            await asyncio.sleep(0.5)
                    return answer["supervisor"]["pid"] if victim == "supervisor" else answer["pid"]

                pid = await pid_of()
                os.kill(pid, signal.SIGKILL)
                durable_at_kill = await durable_messages(faulty)
                status = await wait_until_drained(pipeline, len(payloads), timeout_s=300)
                restarted_pid = await pid_of()
                return status, durable_at_kill, pid, restarted_pid
            finally:
                await stop_pipeline(pipeline)

        _status, durable_at_kill, pid, restarted_pid = asyncio.run(with_kill())
        assert durable_at_kill < len(payloads), "the kill must land mid-stream"
        assert restarted_pid != pid, "Ray restarted the actor in a new process"
        run_pipeline(clean, len(payloads))
        counts = asyncio.run(stored_counts(faulty.database_url))
        assert counts["readings"] == counts["distinct_readings"] == len(payloads)
        assert asyncio.run(domain_event_set(faulty.database_url)) == asyncio.run(domain_event_set(clean.database_url))
        # No assertion on status["rewinds"]: a kill between two calls costs no batch (the next call
        # waits for the restarted actor), a kill during one makes the consumer rewind; both must be exact.
    finally:
        for url in urls:
            drop(url)


async def _wait_for_progress(pipeline, at_least: int, timeout_s: float = 120) -> None:
    from autoins.pipeline import pipeline_status

    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while loop.time() < deadline:
        if (await pipeline_status(pipeline))["durable"] >= at_least:
            return
        await asyncio.sleep(0.05)
    raise TimeoutError("the pipeline made no progress")


def _crash_trip(driver_id: str) -> list[bytes]:
    """One trip with a 4 g impact in its middle and 40 s of readings either side, as wire JSON."""
    drive = Drive(driver_id, t0_ms=START_MS)
    drive.ignition_on()
    drive.cruise(40, 50.0)
    drive.add(speed_kmh=20.0, accel_ms2=-40.0)  # ≥ crash_g (2.5 g)
    drive.stop(40)
    drive.ignition_off()
    return [msgspec.json.encode({"event_id": str(r.event_id), "driver_id": r.driver_id, "ts": r.ts_ms,
                                 "type": r.type.value, "lat": r.lat, "lon": r.lon, "speed_kmh": r.speed_kmh,
                                 "accel_ms2": r.accel_ms2, "heading": r.heading}) for r in drive.readings]


async def _claims(url: str) -> list[dict]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch("SELECT c.claim_id, c.crash_event_id, c.driver_id, c.status, c.peak_g, c.speed_kmh,"
                                " jsonb_array_length(c.readings) AS samples, e.event_type FROM claims c"
                                " JOIN domain_events e ON e.event_id = c.crash_event_id")
        return [dict(r) for r in rows]
    finally:
        await conn.close()


def test_a_crash_reading_opens_one_claim_through_the_pipeline_and_redelivery_opens_none(ray_session,
                                                                                        pipeline_settings):
    payloads = _crash_trip("driver-fnol")
    produce(pipeline_settings, payloads, [key_of(p) for p in payloads])
    run_pipeline(pipeline_settings, len(payloads))
    [claim] = asyncio.run(_claims(pipeline_settings.database_url))
    assert (claim["driver_id"], claim["status"], claim["event_type"]) == ("driver-fnol", "open", "crash_detected")
    assert claim["claim_id"] == claim_id(claim["crash_event_id"]) and claim["peak_g"] > 4.0
    assert claim["samples"] > 50  # the 30 s before and after, one reading a second
    # Another consumer group reads the whole topic again: every reading is redelivered to the pipeline.
    again = pipeline_settings.with_overrides(kafka_consumer_group=f"again-{uuid.uuid4().hex[:8]}")
    run_pipeline(again, len(payloads))
    assert asyncio.run(_claims(pipeline_settings.database_url)) == [claim]
    counts = asyncio.run(stored_counts(pipeline_settings.database_url))
    assert counts["readings"] == counts["distinct_readings"] == len(payloads)
