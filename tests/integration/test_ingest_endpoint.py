"""POST /api/v1/telematics/events on Serve against a broker of its own (so it can be killed): 202 only after
Kafka acknowledged, per-item rejections, per-batch authorization, size limits, and 503 (never 500, never a
false 202) while the broker is down, then recovery."""

from __future__ import annotations

import time
import uuid

import httpx
import msgspec
import pytest
from confluent_kafka import Consumer, TopicPartition
from ray import serve

from autoins.stack import free_tcp_port, start_tansu, stop_process
from config.names import API_APP
from deployments.builder import API_ROUTE, build_api_app
from storage.kafka.clients import consumer_config, ensure_topics
from tests.integration.serve_support import (
    admin_token,
    bearer,
    driver_token,
    insert_drivers,
    run_driver_ids,
    settings_with_topics,
    wait_for,
)

pytestmark = pytest.mark.timeout(300)
URL = "/api/v1/telematics/events"
MAX_READINGS = 50


class Broker:
    """A tansu broker this module may stop and start again on the same port (memory storage: topics go)."""

    def __init__(self, data_dir) -> None:
        self.port, self.data_dir = free_tcp_port(), data_dir
        self.process = start_tansu(self.port, data_dir)

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self) -> None:
        stop_process(self.process)

    def start(self) -> None:
        self.process = start_tansu(self.port, self.data_dir)


@pytest.fixture(scope="module")
def ingest(serve_session, migrated_settings, tmp_path_factory):
    broker = Broker(tmp_path_factory.mktemp("tansu-ingest"))
    try:
        settings = settings_with_topics(migrated_settings, broker.bootstrap, api_num_replicas=1,
                                        ingest_max_readings=MAX_READINGS, ingest_kafka_timeout_s=2.0)
        drivers = run_driver_ids(2)
        insert_drivers(settings, drivers)
        serve.run(build_api_app(settings), name=API_APP, route_prefix=API_ROUTE)
        with httpx.Client(base_url=serve_session, timeout=30) as client:
            yield client, settings, drivers, broker
        serve.delete(API_APP)
    finally:
        broker.stop()


def reading(driver_id: str, **changes) -> dict:
    wire = {"event_id": str(uuid.uuid4()), "driver_id": driver_id, "ts": int(time.time() * 1000) - 1_000,
            "type": "position", "lat": 45.5, "lon": 7.2, "speed_kmh": 42.0, "accel_ms2": 0.3, "heading": 180.0}
    wire.update(changes)
    return {k: v for k, v in wire.items() if v is not None}


def consumed(settings) -> list:
    """Every message of the events topic, from the beginning."""
    consumer = Consumer(consumer_config(settings, group_id=f"ingest-test-{uuid.uuid4().hex[:6]}"))
    try:
        partitions = consumer.list_topics(settings.kafka_topic_events, timeout=10).topics[
            settings.kafka_topic_events].partitions
        consumer.assign([TopicPartition(settings.kafka_topic_events, p, 0) for p in partitions])
        messages, idle_since = [], time.monotonic()
        while time.monotonic() - idle_since < 1.5:
            batch = consumer.consume(500, timeout=0.3)
            if batch:
                messages += [m for m in batch if m.error() is None]
                idle_since = time.monotonic()
        return messages
    finally:
        consumer.close()


def test_accepted_readings_are_in_kafka_keyed_by_driver_with_the_request_id(ingest):
    client, settings, (driver, _), _ = ingest
    readings = [reading(driver) for _ in range(5)]
    request_id = f"ingest-{uuid.uuid4().hex}"
    response = client.post(URL, json={"readings": readings},
                           headers={**bearer(driver_token(settings, driver)), "X-Request-ID": request_id})
    assert response.status_code == 202, response.text
    assert response.json() == {"accepted": 5, "rejected": []}
    mine = [m for m in consumed(settings) if dict(m.headers() or ()).get("x-request-id") == request_id.encode()]
    assert sorted(msgspec.json.decode(m.value())["event_id"] for m in mine) == sorted(r["event_id"] for r in readings)
    assert {m.key() for m in mine} == {driver.encode()}


def test_invalid_readings_are_rejected_one_by_one_with_reason_and_field(ingest):
    client, settings, (driver, _), _ = ingest
    batch = [reading(driver), reading(driver, lat=200.0), reading(driver, lon=None), reading(driver, heading=-7)]
    response = client.post(URL, json={"readings": batch}, headers=bearer(driver_token(settings, driver)))
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["accepted"] == 1
    assert [(r["index"], r["reason"], r["field"]) for r in body["rejected"]] == [
        (1, "lat_out_of_range", "lat"), (2, "missing_field", "lon"), (3, "heading_out_of_range", "heading")]
    assert all(r["message"] for r in body["rejected"])


def test_a_driver_posting_another_drivers_readings_is_refused_and_nothing_is_produced(ingest):
    client, settings, (driver, other), _ = ingest
    foreign = reading(other)
    response = client.post(URL, json={"readings": [reading(driver), foreign]},
                           headers=bearer(driver_token(settings, driver)))
    assert response.status_code == 403, response.text
    assert "nothing was accepted" in response.json()["detail"]
    assert foreign["event_id"] not in {msgspec.json.decode(m.value())["event_id"] for m in consumed(settings)}


def test_an_admin_may_post_any_drivers_readings(ingest):
    client, settings, drivers, _ = ingest
    response = client.post(URL, json={"readings": [reading(d) for d in drivers]}, headers=bearer(admin_token(settings)))
    assert response.status_code == 202 and response.json()["accepted"] == 2


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b'{"readings": []}', 422),
        (b'{"readings": "no"}', 422),
        (b'{"readings": [1, 2]}', 422),  # nothing valid
        (b'{"readings": [', 400),
        (b'{"readings": ' + b"[" * 3000 + b"]" * 3000 + b"}", 400),  # nested too deeply: not a 500
        (b"[" * 3000 + b"]" * 3000, 422),  # not an object: refused before its depth matters
        (None, 413),
    ],
)
def test_bad_batches_get_a_clear_4xx(ingest, body, status):
    client, settings, (driver, _), _ = ingest
    if body is None:
        body = msgspec.json.encode({"readings": [reading(driver) for _ in range(MAX_READINGS + 1)]})
    response = client.post(URL, content=body, headers={**bearer(driver_token(settings, driver)),
                                                       "content-type": "application/json"})
    assert response.status_code == status, response.text
    assert response.json()["detail"]


def test_unknown_heading_speed_and_acceleration_as_devices_send_them_are_accepted(ingest):
    """Issue 12: a phone's heading -1 without a course, a literal NaN (not strict JSON, but what apps write),
    null and an absent field are "unknown" and keep the reading; it reaches Kafka with the field left out."""
    client, settings, (driver, _), _ = ingest
    batch = [reading(driver, type="ignition_on", heading=-1, speed_kmh=-1), reading(driver, accel_ms2=None),
             reading(driver, heading=12345.5)]
    request_id = f"sentinel-{uuid.uuid4().hex}"
    body = msgspec.json.encode({"readings": batch}).replace(b"12345.5", b"NaN")
    response = client.post(URL, content=body, headers={**bearer(driver_token(settings, driver)),
                                                       "X-Request-ID": request_id,
                                                       "content-type": "application/json"})
    assert response.status_code == 202, response.text
    assert response.json() == {"accepted": 3, "rejected": []}
    mine = [msgspec.json.decode(m.value()) for m in consumed(settings)
            if dict(m.headers() or ()).get("x-request-id") == request_id.encode()]
    by_id = {m["event_id"]: m for m in mine}
    assert "heading" not in by_id[batch[0]["event_id"]] and "speed_kmh" not in by_id[batch[0]["event_id"]]
    assert "accel_ms2" not in by_id[batch[1]["event_id"]] and "heading" not in by_id[batch[2]["event_id"]]
    assert by_id[batch[1]["event_id"]]["heading"] == 180.0


def test_posting_without_a_token_is_401(ingest):
    client, _, (driver, _), _ = ingest
    assert client.post(URL, json={"readings": [reading(driver)]}).status_code == 401


def test_a_device_key_posts_its_drivers_readings_through_the_ingress_and_backdated_ones_are_named(ingest):
    """Issue 13: a device posts with its own key, bound to its driver; readings older than the backdating window are
    rejected one by one (`ts_backdated`) and never reach Kafka."""
    client, settings, (driver, other), _ = ingest
    created = client.post("/api/v1/admin/devices", json={"driver_id": driver, "label": "ingress"},
                          headers=bearer(admin_token(settings)))
    assert created.status_code == 201, created.text
    key = {"X-Device-Key": created.json()["key"]}
    fresh = reading(driver)
    old = reading(driver, ts=int(time.time() * 1000) - (settings.ingest_max_backdate_s + 3600) * 1000)
    request_id = f"device-{uuid.uuid4().hex}"
    response = client.post(URL, json={"readings": [fresh, old]}, headers={**key, "X-Request-ID": request_id})
    assert response.status_code == 202, response.text
    assert response.json()["accepted"] == 1
    assert [(r["index"], r["reason"]) for r in response.json()["rejected"]] == [(1, "ts_backdated")]
    mine = [msgspec.json.decode(m.value())["event_id"] for m in consumed(settings)
            if dict(m.headers() or ()).get("x-request-id") == request_id.encode()]
    assert mine == [fresh["event_id"]]
    refused = client.post(URL, json={"readings": [reading(other)]}, headers=key)
    assert refused.status_code == 403 and "nothing was accepted" in refused.json()["detail"]
    wrong = created.json()["key"][:-1] + ("A" if not created.json()["key"].endswith("A") else "B")
    assert client.post(URL, json={"readings": [reading(driver)]}, headers={"X-Device-Key": wrong}).status_code == 401


def test_a_kafka_outage_is_a_503_with_retry_after_and_claims_nothing_then_ingest_recovers(ingest):
    client, settings, (driver, _), broker = ingest
    headers = bearer(driver_token(settings, driver))
    broker.stop()
    try:
        started = time.monotonic()
        response = client.post(URL, json={"readings": [reading(driver)]}, headers=headers)
        assert response.status_code == 503, response.text
        assert int(response.headers["retry-after"]) > 0
        assert response.json()["accepted"] == 0 and "nothing was accepted" in response.json()["detail"]
        assert time.monotonic() - started < 10  # bounded by ingest_kafka_timeout_s, not a hang
    finally:
        broker.start()
    ensure_topics(settings)  # memory storage: the restarted broker starts empty
    retried = [reading(driver) for _ in range(3)]

    def accepted() -> httpx.Response | None:
        response = client.post(URL, json={"readings": retried}, headers=headers)
        assert response.status_code in (202, 503), response.text
        return response if response.status_code == 202 else None

    assert wait_for(accepted, 60, "ingest to recover after the broker came back", every_s=1).json()["accepted"] == 3
    assert {r["event_id"] for r in retried} <= {msgspec.json.decode(m.value())["event_id"] for m in consumed(settings)}
