"""`autoins dlq list|show|replay` against real Kafka (tansu), PostgreSQL and the running pipeline (issue 14 item 6)."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import msgspec
import pytest
from typer.testing import CliRunner

from autoins.pipeline import start_pipeline, stop_pipeline, wait_until_drained
from domain import dead_letters as dl
from storage.kafka.dlq import read_dead_letters
from storage.kafka.producer import ReadingProducer
from tests.integration.pipeline_support import drop, make_migrated_database

pytestmark = pytest.mark.timeout(180)
FUTURE_S = 8  # the "fixable" reading is this far ahead of the clock: refused at once, valid once time passes


@pytest.fixture
def dlq_settings(base_settings, kafka_topics):
    url = asyncio.run(make_migrated_database(base_settings, datetime.now(UTC)))
    yield base_settings.with_overrides(
        database_url=url, kafka_consumer_group=f"test-{uuid.uuid4().hex[:8]}", num_shards=1, num_persistence=1,
        kafka_num_consumers=1, max_future_skew_s=1, maintenance_enabled=False, db_pool_size=1, db_max_overflow=2,
        **kafka_topics,
    )
    drop(url)


def _reading(driver: str, ts: datetime) -> tuple[str, bytes]:
    event_id = str(uuid.uuid4())
    body = {"event_id": event_id, "driver_id": driver, "ts": ts.isoformat(), "type": "position",
            "lat": 48.137, "lon": 11.575, "speed_kmh": 42.0}
    return event_id, msgspec.json.encode(body)


def _cli(settings, *args: str):
    from autoins.cli import app

    env = {"KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers, "DATABASE_URL": settings.database_url,
           "KAFKA_TOPIC_EVENTS": settings.kafka_topic_events, "KAFKA_TOPIC_DLQ": settings.kafka_topic_dlq,
           "LOG_JSON": "false"}
    return CliRunner().invoke(app, ["dlq", *args], env=env)


async def _stored(url: str, event_ids: list[str]) -> dict[str, int]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch("SELECT event_id::text AS id, count(*) AS n FROM telematics_events GROUP BY 1")
    finally:
        await conn.close()
    counts = {r["id"]: r["n"] for r in rows}
    return {e: counts.get(e, 0) for e in event_ids}


def test_replay_after_a_fix_stores_each_reading_once_and_sends_the_still_invalid_back(ray_session, dlq_settings):
    settings = dlq_settings

    async def scenario():
        pipeline = start_pipeline(settings, prefix=f"{uuid.uuid4().hex[:6]}-")
        try:
            # Produced once the pipeline runs: the reading must still be ahead of the clock when it is consumed.
            now = datetime.now(UTC)
            ids["valid"], valid = _reading("drv-a", now)
            ids["future"], future = _reading("drv-b", now + timedelta(seconds=FUTURE_S))
            with ReadingProducer(settings) as producer:
                producer.produce(settings.kafka_topic_events, valid, b"drv-a")
                producer.produce(settings.kafka_topic_events, future, b"drv-b", [(dl.REQUEST_ID, b"req-future")])
                producer.produce(settings.kafka_topic_events, b'{"event_id": "cut', b"drv-c",
                                 [(dl.REQUEST_ID, b"req-poison")])
                producer.flush(30)
            await wait_until_drained(pipeline, 3, 60)
            listed = await asyncio.to_thread(_cli, settings, "list")
            assert listed.exit_code == 0, listed.output
            assert "ts_in_future: 1" in listed.output and "invalid_json: 1" in listed.output
            letters = {r.reason: r for r in read_dead_letters(settings)}
            poison = letters["invalid_json"]
            assert letters["ts_in_future"].header(dl.REQUEST_ID) == "req-future"

            await asyncio.sleep(max(0.0, (now + timedelta(seconds=FUTURE_S + 1.5) - datetime.now(UTC)).total_seconds()))
            for _ in range(2):  # the fix: time caught up with the reading. Replaying twice must store it once.
                replayed = await asyncio.to_thread(_cli, settings, "replay", "--reason", "ts_in_future")
                assert replayed.exit_code == 0 and "replayed 1 dead letters" in replayed.output, replayed.output
            again = await asyncio.to_thread(_cli, settings, "replay", "--offset", f"{poison.partition}:{poison.offset}")
            assert again.exit_code == 0, again.output
            await wait_until_drained(pipeline, 6, 60)
        finally:
            await stop_pipeline(pipeline)
        return poison

    ids: dict[str, str] = {}
    poison = asyncio.run(scenario())
    stored = asyncio.run(_stored(settings.database_url, [ids["valid"], ids["future"]]))
    assert stored == {ids["valid"]: 1, ids["future"]: 1}
    letters = read_dead_letters(settings)
    assert len(letters) == 3  # the two originals stay; the still-invalid replay came back, with its reason
    [back] = [r for r in letters if r.header(dl.REPLAY_OF)]
    assert back.reason == "invalid_json" and back.value == poison.value
    assert back.header(dl.REPLAY_OF) == f"{settings.kafka_topic_dlq}:{poison.partition}:{poison.offset}"
    assert back.header(dl.REQUEST_ID) == "req-poison"
    shown = _cli(settings, "show", f"{back.partition}:{back.offset}")
    assert shown.exit_code == 0 and dl.REPLAY_OF in shown.output and "invalid_json" in shown.output, shown.output


def test_replay_arguments_are_checked_before_anything_is_sent(dlq_settings):
    settings = dlq_settings
    with ReadingProducer(settings) as producer:
        producer.produce(settings.kafka_topic_dlq, b"x", b"k", [(dl.REASON, b"invalid_json")], partition=0)
        producer.flush(30)
    cases = [
        (["replay"], 2, "say what to replay"),
        (["replay", "--all", "--reason", "invalid_json"], 2, "--all replays everything"),
        (["replay", "--reason", "bogus"], 2, "unknown reason 'bogus'; reasons are: invalid_json"),
        (["replay", "--offset", "7"], 2, "write it as P:7"),
        (["replay", "--offset", "0:0-5"], 1, "no dead letter at 0:1, 0:2, 0:3, 0:4, 0:5"),
        (["replay", "--reason", "ts_in_future"], 1, "matches: nothing was replayed"),
        (["show", "0:0-1"], 2, "show takes one position"),
        (["show", "3:0"], 1, "no dead letter at 3:0"),
    ]
    for args, code, says in cases:
        result = _cli(settings, *args)
        assert result.exit_code == code and says in " ".join(result.output.split()), (args, result.output)
    dry = _cli(settings, "replay", "--all", "--dry-run")
    assert dry.exit_code == 0 and "would replay 1 dead letters (invalid_json 1)" in dry.output
    assert read_dead_letters(settings.with_overrides(kafka_topic_dlq=settings.kafka_topic_events)) == []


def test_reading_the_dlq_gets_every_record_of_every_partition_and_stops_at_the_end(dlq_settings):
    settings = dlq_settings
    empty_started = time.monotonic()
    assert read_dead_letters(settings) == []
    assert time.monotonic() - empty_started < 4.0  # the end of each empty partition, not the idle timeout
    with ReadingProducer(settings) as producer:  # uneven: partition 3 gets one, 0 gets most
        for i in range(301):
            producer.produce(settings.kafka_topic_dlq, b"%d" % i, b"k", [(dl.REASON, b"invalid_json")],
                             partition=3 if i == 300 else i % 3)
        producer.flush(30)
    for _ in range(3):  # a first read once stopped before a partition's first fetch (tansu's ListOffsets)
        records = read_dead_letters(settings)
        assert len(records) == 301 and {r.partition for r in records} == {0, 1, 2, 3}
        assert [r.position for r in records] == sorted(r.position for r in records)


def test_an_unreachable_broker_is_one_line(dlq_settings):
    result = _cli(dlq_settings.with_overrides(kafka_bootstrap_servers="127.0.0.1:1"), "list")
    assert result.exit_code == 1 and "run `autoins stack up`" in result.output
    assert "Traceback" not in result.output
