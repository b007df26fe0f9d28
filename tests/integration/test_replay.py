"""`autoins replay` against a running system (the API on Serve, the supervised pipeline, PostgreSQL, Redis, Kafka):
a short trip's readings posted through the public API come back as the trip and its episodes, printed. Also the
TelematicsApi contract on the real HTTP client, and the one-line failures (API down)."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest
from ray import serve
from typer.testing import CliRunner

from autoins.cli import app
from autoins.pipeline import start_pipeline, stop_pipeline
from autoins.stack.processes import free_tcp_port
from config.names import API_APP
from deployments.api.auth import hash_password_sync
from deployments.builder import API_ROUTE, build_api_app
from storage.http.telematics_api import HttpTelematicsApi
from storage.postgres.pool import connect
from storage.postgres.users import create_user
from tests.contracts import telematics_api_contract as contract
from tests.integration.inprocess_api import insert_trip_story
from tests.integration.serve_support import (
    driver_token,
    insert_drivers,
    settings_with_topics,
)

pytestmark = pytest.mark.timeout(600)
MAX_READINGS = 50
PASSWORD = "replay-password-1"
M_PER_DEG_LAT = 111_195.0


class System:
    def __init__(self, settings, base_url: str, driver: str, contract_driver: str, other: str) -> None:
        self.settings, self.base_url = settings, base_url
        self.driver, self.contract_driver, self.other = driver, contract_driver, other


@pytest.fixture(scope="module")
def system(serve_session, migrated_settings, kafka_bootstrap):
    settings = settings_with_topics(
        migrated_settings, kafka_bootstrap, api_num_replicas=1, kafka_consumer_group=f"replay-{uuid.uuid4().hex[:8]}",
        kafka_num_consumers=1, num_shards=1, num_persistence=1, consumer_batch_size=1_000,
        ingest_max_readings=MAX_READINGS)  # fmt: skip
    # ids of this module alone: run_driver_ids are shared by every module of the run (one database, one Redis), and
    # this module's pipeline publishes live messages and stores trips under them
    tag = uuid.uuid4().hex[:8]
    driver, contract_driver, other = (f"rp-{tag}-{n}" for n in range(3))
    insert_drivers(settings, [driver, contract_driver, other])
    asyncio.run(_login_for(settings, driver))
    serve.run(build_api_app(settings), name=API_APP, route_prefix=API_ROUTE)
    pipeline = start_pipeline(settings, prefix=f"{uuid.uuid4().hex[:6]}-")
    try:
        yield System(settings, serve_session, driver, contract_driver, other)
    finally:
        asyncio.run(stop_pipeline(pipeline))
        serve.delete(API_APP)


async def _login_for(settings, driver_id: str) -> None:
    conn = await connect(settings)
    try:
        await create_user(conn, username=driver_id, password_hash=hash_password_sync(PASSWORD), role="driver",
                          driver_id=driver_id)
    finally:
        await conn.close()


def a_short_trip(driver_id: str, t0_ms: int) -> list[dict]:
    """Ignition on, 2.5 minutes north at 1 Hz: up to 50 km/h, 20 s at 75 where the limit is 50 (speeding), a harsh
    brake (three samples at −4.5 m/s²), a slow end, ignition off, then 10 s parked (releases the reorder window)."""
    speeds = ([5.0 * s for s in range(11)] + [50.0] * 30 + [75.0] * 20 + [50.0] * 20 + [45.0, 35.0, 25.0]
              + [25.0] * 30 + [25.0 - 2.5 * s for s in range(1, 11)])
    accels = [1.4] * 11 + [0.0] * 30 + [0.2] * 20 + [0.0] * 20 + [-4.5] * 3 + [0.0] * 30 + [-0.7] * 10
    readings, lat = [], 45.5
    for s, (speed, accel) in enumerate(zip(speeds, accels, strict=True)):
        lat += speed / 3.6 / M_PER_DEG_LAT
        kind = "ignition_on" if s == 0 else "position"
        readings.append({"event_id": str(uuid.uuid4()), "driver_id": driver_id, "ts": t0_ms + s * 1000, "type": kind,
                         "lat": lat, "lon": 7.2, "speed_kmh": speed, "accel_ms2": accel, "heading": 0.0,
                         "speed_limit_kmh": 50.0})
    end_ms = t0_ms + len(speeds) * 1000
    for s in range(11):
        readings.append({"event_id": str(uuid.uuid4()), "driver_id": driver_id, "ts": end_ms + s * 1000,
                         "type": "ignition_off" if s == 0 else "position", "lat": lat, "lon": 7.2, "speed_kmh": 0.0,
                         "accel_ms2": 0.0, "heading": 0.0})
    return readings


def _write_jsonl(path: Path, readings: list[dict], driver_id: str, t0_ms: int) -> Path:
    lines = [json.dumps(r) for r in readings]
    lines.insert(2, "this line is not JSON")
    lines.insert(5, "")
    refused = {**readings[3], "event_id": str(uuid.uuid4()), "lat": 95.0}
    lines.insert(8, json.dumps(refused))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


async def _stored_trips(settings, driver_id: str) -> list[asyncpg.Record]:
    conn = await connect(settings)
    try:
        return await conn.fetch("SELECT trip_id, start_time, end_time FROM trips WHERE driver_id = $1", driver_id)
    finally:
        await conn.close()


def test_replay_posts_a_file_and_prints_the_trip_and_its_episodes(system, tmp_path):
    t0_ms = int(time.time() * 1000) - 20 * 60_000
    readings = a_short_trip(system.driver, t0_ms)
    path = _write_jsonl(tmp_path / "trip.jsonl", readings, system.driver, t0_ms)
    result = CliRunner().invoke(app, [
        "replay", str(path), "--api-url", system.base_url, "--username", system.driver, "--password", PASSWORD,
        "--batch-size", "20", "--timeout", "180", "--settle", "3"])
    out = result.output
    assert result.exit_code == 0, out
    assert "Traceback" not in out
    accepted = len(readings)
    assert f"{accepted + 2} lines: {accepted} readings accepted, 1 refused by the API, 1 bad lines skipped" in out, out
    assert "line 3: not JSON" in out and "lat_out_of_range" in out
    stored = asyncio.run(_stored_trips(system.settings, system.driver))
    assert len(stored) == 1, stored
    trip = stored[0]
    assert str(trip["trip_id"]) in out and "1 trip(s) hold these readings" in out
    assert trip["start_time"] == datetime.fromtimestamp(t0_ms / 1000, UTC)
    assert "harsh_braking" in out and "speeding" in out and "ignition_off" in out
    assert "75.0 km/h" in out  # the speeding episode's peak: the speed driven at the largest excess


@pytest.fixture
def contract_world(system):
    class HttpWorld:
        driver_id, other_driver_id, max_readings = system.contract_driver, system.other, MAX_READINGS
        now_ms = int(time.time() * 1000)
        api = HttpTelematicsApi(system.base_url, driver_token(system.settings, system.contract_driver))

        async def given_trip(self, start_ms: int, end_ms: int, episodes: int) -> uuid.UUID:
            trip_id = uuid.uuid4()
            start, end = (datetime.fromtimestamp(ms / 1000, UTC) for ms in (start_ms, end_ms))
            conn = await connect(system.settings)
            try:
                await conn.execute(
                    "INSERT INTO trips (trip_id, driver_id, start_time, end_time, distance_m, duration_s,"
                    " avg_speed_kmh, max_speed_kmh, end_reason) VALUES ($1, $2, $3, $4, 1000, $5, 30, 60, 'parked')",
                    trip_id, self.driver_id, start, end, (end_ms - start_ms) / 1000)
            finally:
                await conn.close()
            await insert_trip_story(system.settings, self.driver_id, trip_id, start, end, episodes, 0)
            return trip_id

    return HttpWorld()


@pytest.mark.parametrize("check", contract.CONTRACT, ids=lambda c: c.__name__)
async def test_the_http_client_keeps_the_telematics_api_contract(contract_world, check):
    try:
        await check(contract_world)
    finally:
        await contract_world.api.aclose()


def test_replay_says_so_in_one_line_when_the_api_is_down(tmp_path):
    path = tmp_path / "one.jsonl"
    path.write_text(json.dumps({"event_id": str(uuid.uuid4())}) + "\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["replay", str(path), "--api-url", f"http://127.0.0.1:{free_tcp_port()}",
                                      "--token", "t"])
    assert result.exit_code == 1
    assert "cannot reach the API" in result.output and "autoins serve" in result.output
    assert "Traceback" not in result.output
