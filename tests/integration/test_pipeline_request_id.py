"""One request id followed end to end: `POST /api/v1/telematics/events` with `X-Request-ID` → the Kafka header
`x-request-id` → the pipeline → `domain_events.request_id` of the events its readings caused, and a pipeline
log line (a Ray worker's log file) that carries it (docs/OPERATIONS.md, "Request ids")."""

from __future__ import annotations

import asyncio
import json
import time
import uuid

import asyncpg
import httpx
import pytest
from ray import serve

from autoins.pipeline import start_pipeline, stop_pipeline
from config.names import API_APP
from deployments.builder import API_ROUTE, build_api_app
from tests.integration.serve_support import (
    bearer,
    driver_token,
    insert_drivers,
    log_lines_containing,
    run_driver_ids,
    settings_with_topics,
    wait_for,
)

pytestmark = pytest.mark.timeout(600)
URL = "/api/v1/telematics/events"


def a_trip_start(driver_id: str) -> list[dict]:
    """Ignition on, then 40 s of driving: more than the reorder window, so `trip_started` is emitted."""
    t0 = int(time.time() * 1000) - 120_000
    readings = [{"event_id": str(uuid.uuid4()), "driver_id": driver_id, "ts": t0, "type": "ignition_on",
                 "lat": 45.5, "lon": 7.2, "speed_kmh": 0.0, "accel_ms2": 0.0, "heading": 90.0}]  # fmt: skip
    for s in range(1, 41):
        readings.append({"event_id": str(uuid.uuid4()), "driver_id": driver_id, "ts": t0 + s * 1000,
                         "type": "position", "lat": 45.5, "lon": 7.2 + s * 0.00015, "speed_kmh": 40.0,
                         "accel_ms2": 0.1, "heading": 90.0})  # fmt: skip
    return readings


async def stored_request_ids(database_url: str, driver_id: str) -> list[tuple[str, str | None]]:
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT event_type, request_id FROM domain_events WHERE stream_id = $1 ORDER BY stream_version", driver_id
        )
    finally:
        await conn.close()
    return [(r["event_type"], r["request_id"]) for r in rows]


def test_a_request_id_travels_from_the_api_to_domain_events_and_the_pipeline_logs(
    serve_session, migrated_settings, kafka_bootstrap
):
    settings = settings_with_topics(
        migrated_settings, kafka_bootstrap, api_num_replicas=1, kafka_consumer_group=f"rid-{uuid.uuid4().hex[:8]}",
        kafka_num_consumers=1, num_shards=1, num_persistence=1, consumer_batch_size=1_000, log_json=True,
    )  # fmt: skip
    (driver,) = run_driver_ids(1)
    insert_drivers(settings, [driver])
    request_id = f"trace-{uuid.uuid4().hex}"
    serve.run(build_api_app(settings), name=API_APP, route_prefix=API_ROUTE)
    pipeline = start_pipeline(settings, prefix=f"{uuid.uuid4().hex[:6]}-")
    try:
        with httpx.Client(base_url=serve_session, timeout=30) as client:
            headers = {**bearer(driver_token(settings, driver)), "X-Request-ID": request_id}
            response = client.post(URL, json={"readings": a_trip_start(driver)}, headers=headers)
        assert response.status_code == 202, response.text
        assert response.headers.get("x-request-id", request_id) == request_id

        events = wait_for(
            lambda: asyncio.run(stored_request_ids(settings.database_url, driver)), 120, "the trip's domain events"
        )
        assert ("trip_started", request_id) in events
        assert {rid for _, rid in events} == {request_id}  # every event of these readings came from this request

        lines = wait_for(lambda: log_lines_containing(request_id), 60, "a log line with the request id", every_s=1)
        pipeline_lines = [json.loads(line[line.index("{"):]) for line in lines if '"batch_persisted"' in line]
        assert pipeline_lines, lines
        assert request_id in pipeline_lines[0]["request_ids"]
        assert pipeline_lines[0]["actor"].startswith("persistence-")
        assert any('"shard_batch_folded"' in line for line in lines)
    finally:
        asyncio.run(stop_pipeline(pipeline))
        serve.delete(API_APP)
