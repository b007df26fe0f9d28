"""A real Prometheus and Alertmanager (Debian's binaries, started as `autoins stack up` starts them) against the
running system on the session's Ray: every family of the plan's §5.1 has series (PromQL), and consumer lag past
10,000 reaches a webhook through the alert rules and Alertmanager.

Prometheus finds the session's Ray node(s) through a file-SD file in its targets directory (the session's Ray runs
without the dashboard, which would write Ray's own discovery file). Rule `for:` durations are cut to 1 s and
scrape/evaluation intervals to 1 s (settings), so an alert takes seconds; Ray's agents report every ~10 s.
"""

from __future__ import annotations

import asyncio
import http.server
import json
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import pytest
from ray import serve

from autoins.dashboards import all_queries
from autoins.pipeline import start_pipeline, stop_pipeline
from autoins.stack.monitoring import Monitoring
from config.names import API_APP, RISK_APP, WS_APP
from deployments.builder import API_ROUTE, WS_ROUTE, build_api_app, build_risk, build_ws_app
from deployments.ws_protocol import client_subprotocols
from storage.postgres.pool import with_database
from tests.integration.monitoring_support import NOT_INSTALLED, installed, promql, session_prometheus
from tests.integration.pipeline_support import produce
from tests.integration.serve_support import (
    bearer,
    driver_token,
    insert_drivers,
    run_driver_ids,
    settings_with_topics,
    wait_for,
)

pytestmark = [pytest.mark.timeout(240), pytest.mark.skipif(not installed(), reason=NOT_INSTALLED)]
LAG_READINGS = 12_000  # past the 10,000 of KafkaConsumerLagHigh
# Dashboard panels that count events this short run need not have (5xx/4xx answers, actor restarts, ended trips):
# their queries must still run, but may return nothing.
# The drift panels show the maintenance actor's hourly drift task, which this short run need not reach.
RARE_EVENT_PANELS = {"Error rate", "Pipeline actor restarts", "Trips and scores per hour", "Cohort premium ratio",
                     "Model drift (PSI)"}


@dataclass
class Webhook:
    """Alertmanager's receiver: every POSTed notification with the monotonic time it arrived."""

    url: str = ""
    received: list[tuple[float, dict]] = field(default_factory=list)

    def firing(self, alertname: str) -> list[tuple[float, dict]]:
        return [(at, alert) for at, body in self.received for alert in body.get("alerts", [])
                if alert["labels"].get("alertname") == alertname and alert["status"] == "firing"]


@pytest.fixture(scope="module")
def webhook() -> Iterator[Webhook]:
    hook = Webhook()

    class Receiver(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            hook.received.append((time.monotonic(), json.loads(body)))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *_args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    hook.url = f"http://127.0.0.1:{server.server_address[1]}/alerts"
    yield hook
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def prometheus(ray_session, migrated_settings, webhook, tmp_path_factory) -> Iterator[Monitoring]:
    with session_prometheus(ray_session, migrated_settings, tmp_path_factory.mktemp("monitoring"), alert_for_s=1.0,
                            alert_webhook_url=webhook.url, alert_group_wait_s=0.5) as running:
        yield running


def test_consumer_lag_past_10k_reaches_the_webhook_while_the_consumer_cannot_commit(
        prometheus, webhook, migrated_settings, kafka_bootstrap):
    # The consumers of this pipeline wait for a database that does not exist (PostgreSQL "down" for them): they
    # never commit, so what is produced is lag, measured by the supervisor from outside the stuck consumer.
    group = f"lag-{uuid.uuid4().hex[:8]}"
    settings = settings_with_topics(migrated_settings, kafka_bootstrap, kafka_consumer_group=group,
                                    kafka_num_consumers=1, num_shards=1, num_persistence=1)
    settings = settings.with_overrides(database_url=with_database(settings.database_url, f"absent_{group}"))
    pipeline = start_pipeline(settings, prefix=f"{group}-")
    try:
        produce(settings, [b"{}"] * LAG_READINGS, [str(i % 97).encode() for i in range(LAG_READINGS)])
        produced_at = time.monotonic()
        topic = settings.kafka_topic_events
        per_partition = wait_for(
            lambda: (r := promql(prometheus, f'ray_kafka_consumer_lag{{topic="{topic}"}}'))
            and sum(float(s["value"][1]) for s in r) >= LAG_READINGS and r, 60, "the lag in Prometheus", every_s=1)
        assert {s["metric"]["partition"] for s in per_partition} == {"0", "1"}
        assert {s["metric"]["consumer_group"] for s in per_partition} == {group}
        fired = wait_for(lambda: [a for a in webhook.firing("KafkaConsumerLagHigh")
                                  if a[1]["labels"].get("topic") == topic], 60, "the alert at the webhook", every_s=0.5)
        at, alert = fired[0]
        assert alert["labels"]["consumer_group"] == group and alert["labels"]["severity"] == "page"
        assert "messages behind" in alert["annotations"]["summary"]
        print(f"\nKafkaConsumerLagHigh reached the webhook {at - produced_at:.1f} s after {LAG_READINGS:,} readings "
              f"were produced: {alert['annotations']['summary']}")
    finally:
        asyncio.run(stop_pipeline(pipeline, timeout_s=5))


# Every §5.1 family as scraped (Ray adds `ray_`; counters end in `_total`, histograms have `_bucket`).
FAMILIES = {
    "HTTP": "ray_http_request_duration_seconds_bucket",
    "DB query duration": "ray_db_query_duration_seconds_bucket",
    "pool (API)": 'ray_db_connection_pool_size{pool="autoins-api"}',
    "pool (persistence actor)": 'ray_db_connection_pool_available{pool=~"autoins-.*persistence-0"}',
    "cache hits": "ray_cache_hits_total",
    "cache misses": "ray_cache_misses_total",
    "cache latency": "ray_cache_latency_seconds_bucket",
    "Kafka lag per partition": "ray_kafka_consumer_lag",
    "messages processed": 'ray_kafka_messages_processed_total{status="valid"}',
    "processing seconds": "ray_kafka_message_processing_seconds_bucket",
    "ML inference": "ray_ml_inference_duration_seconds_bucket",
    "ML batch size": "ray_ml_batch_size_bucket",
    "model ready": "ray_ml_model_ready",
    "WebSocket connections": "ray_websocket_connections",
    "active drivers": "ray_active_drivers_total",
    "active trips": "ray_active_trips_total",
    "events per second": "ray_events_per_second",
    "average risk score": "ray_average_risk_score",
    # what the alert rules read besides the above (DiskSpaceLow: Ray's node metrics)
    "node disk free": "ray_node_disk_free",
    "node disk usage": "ray_node_disk_usage",
}


def _trip(driver_id: str, t0_ms: int, seconds: int = 40) -> list[dict]:
    readings = [{"event_id": str(uuid.uuid4()), "driver_id": driver_id, "ts": t0_ms + s * 1000,
                 "type": "ignition_on" if s == 0 else "position", "lat": 45.5 + s * 0.0001, "lon": 7.2,
                 "speed_kmh": 40.0, "accel_ms2": 0.0, "heading": 0.0} for s in range(seconds)]
    return readings


def test_every_planned_family_has_series_in_prometheus(prometheus, serve_session, migrated_settings, kafka_bootstrap,
                                                       tmp_path):
    import websockets

    from domain.risk_model import TrainingParams
    from domain.risk_model.dataset import DatasetSpec, build_dataset
    from domain.risk_model.training import train
    from storage.files.model_artifacts import save_artifact

    result = train(build_dataset(DatasetSpec(seed=4, drivers=30, days=1, exposure_years=10.0)),
                   TrainingParams(seed=1, gbm_max_iter=20), {"drivers": 30.0})
    save_artifact(tmp_path, result.spec, result.estimator, created_at="2026-01-01T00:00:00Z",
                  signing_key=migrated_settings.model_signing_key)
    group = f"fam-{uuid.uuid4().hex[:8]}"
    settings = settings_with_topics(migrated_settings, kafka_bootstrap, kafka_consumer_group=group, api_num_replicas=1,
                                    ml_num_replicas=1, kafka_num_consumers=1, num_shards=1, num_persistence=1,
                                    models_dir=tmp_path)
    driver_id = run_driver_ids(1)[0]
    insert_drivers(settings, [driver_id])
    serve.run(build_risk(settings), name=RISK_APP, route_prefix=None)
    serve.run(build_api_app(settings), name=API_APP, route_prefix=API_ROUTE)
    serve.run(build_ws_app(settings), name=WS_APP, route_prefix=WS_ROUTE)
    pipeline = start_pipeline(settings, prefix=f"{group}-")
    headers = bearer(driver_token(settings, driver_id))

    async def traffic_with_a_socket_open() -> dict[str, list]:
        ws_url = serve_session.replace("http://", "ws://") + f"{WS_ROUTE}/drivers/{driver_id}"
        async with websockets.connect(ws_url, open_timeout=10,
                                      subprotocols=client_subprotocols(driver_token(settings, driver_id))):
            async with httpx.AsyncClient(base_url=serve_session, timeout=10) as client:
                for _ in range(3):  # a miss, then hits
                    assert (await client.get(f"/api/v1/drivers/{driver_id}", headers=headers)).status_code == 200
                score = await client.get(f"/api/v1/risk/{driver_id}/score", headers=headers)
                assert score.status_code == 200, score.text
                posted = await client.post("/api/v1/telematics/events", headers=headers,
                                           json={"readings": _trip(driver_id, int(time.time() * 1000) - 60_000)})
                assert posted.status_code == 202, posted.text
            missing: dict[str, list] = {}
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                missing = {name: [] for name, q in FAMILIES.items() if not promql(prometheus, f"count({q}) > 0")}
                if not missing:
                    break
                await asyncio.sleep(1)
            return missing

    try:
        missing = asyncio.run(traffic_with_a_socket_open())
        assert missing == {}, f"families without series in Prometheus: {sorted(missing)}"
        lag = promql(prometheus, f'ray_kafka_consumer_lag{{topic="{settings.kafka_topic_events}"}}')
        assert {s["metric"]["partition"] for s in lag} == {"0", "1"}
        # the rules evaluate on the real label sets without errors, and the disk ratio matches its two series
        groups = httpx.get(f"{prometheus.prometheus_url}/api/v1/rules", timeout=5).json()["data"]["groups"]
        assert {r["name"]: r["health"] for g in groups for r in g["rules"]} == {
            r["name"]: "ok" for g in groups for r in g["rules"]}
        assert promql(prometheus, "ray_node_disk_free / (ray_node_disk_free + ray_node_disk_usage)")
        assert promql(prometheus, "histogram_quantile(0.95, sum by (le) "
                                  "(rate(ray_http_request_duration_seconds_bucket[1m])))")
        # every dashboard query runs (promql asserts a 200) and every panel but the rare-event ones shows data
        shown = {title: False for title, _ in all_queries()}
        for title, expr in all_queries():
            shown[title] |= bool(promql(prometheus, expr))
        empty = sorted(title for title, has_data in shown.items() if not has_data and title not in RARE_EVENT_PANELS)
        assert empty == [], f"dashboard panels without data on a running system: {empty}"
    finally:
        asyncio.run(stop_pipeline(pipeline, timeout_s=10))
        for app in (WS_APP, API_APP, RISK_APP):
            serve.delete(app)
