"""The API platform on Ray Serve (two ApiGateway replicas behind the HAProxy ingress): request ids, health,
and one /metrics scrape covering both replicas."""

from __future__ import annotations

import re
import uuid

import httpx
import pytest
from ray import serve

from config.names import API_APP, RISK_APP
from deployments.builder import API_ROUTE, build_api_app, build_risk
from tests.integration.serve_support import (
    bearer,
    driver_token,
    insert_drivers,
    log_lines_containing,
    run_driver_ids,
    settings_with_topics,
    wait_for,
)

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def api(serve_session, migrated_settings, kafka_bootstrap, tmp_path_factory):
    settings = settings_with_topics(migrated_settings, kafka_bootstrap, api_num_replicas=2, access_log_all=True,
                                    models_dir=tmp_path_factory.mktemp("no-models"))
    driver_id = run_driver_ids(1)[0]
    insert_drivers(settings, [driver_id])
    serve.run(build_api_app(settings), name=API_APP, route_prefix=API_ROUTE)
    with httpx.Client(base_url=serve_session, timeout=10) as client:
        yield client, settings, driver_id
    serve.delete(API_APP)


def test_a_clients_request_id_is_echoed_and_reaches_the_replicas_log(api):
    client, _, _ = api
    request_id = f"test-{uuid.uuid4().hex}"
    response = client.get("/health/live", headers={"X-Request-ID": request_id})
    assert response.status_code == 200
    assert response.headers["x-request-id"] == request_id
    lines = wait_for(lambda: log_lines_containing(request_id), 20, "an access log line with the request id")
    assert any("http_request" in line and "/health/live" in line for line in lines), lines


def test_a_missing_request_id_is_generated_and_logged(api):
    client, _, _ = api
    response = client.get("/health/live")
    generated = response.headers["x-request-id"]
    assert "," not in generated and re.fullmatch(r"[0-9a-f-]{32,36}", generated)
    wait_for(lambda: log_lines_containing(generated), 20, "a log line with the generated request id")


def test_errors_carry_the_request_id_too(api):
    client, _, _ = api
    response = client.get("/api/v1/drivers/me", headers={"X-Request-ID": "err-1"})  # no token: 401
    assert response.status_code == 401
    assert response.headers["x-request-id"] == "err-1"
    assert client.get("/no/such/route", headers={"X-Request-ID": "err-2"}).headers["x-request-id"] == "err-2"


def test_live_answers_without_touching_dependencies(api):
    client, _, _ = api
    response = client.get("/health/live")
    assert response.status_code == 200
    assert response.json()["status"] == "alive"


def test_ready_is_503_naming_the_model_when_the_risk_app_is_not_deployed(api):
    client, _, _ = api
    response = client.get("/health/ready")
    assert response.status_code == 503, response.text
    body = response.json()
    assert body["failed"] == ["model"]
    assert body["checks"]["model"].startswith("not ready: ") and "not deployed" in body["checks"]["model"]
    assert {k: body["checks"][k] for k in ("postgres", "redis", "kafka")} == {"postgres": "ok", "redis": "ok",
                                                                             "kafka": "ok"}


def test_ready_is_503_with_the_models_reason_while_it_has_no_artifact(api):
    client, settings, _ = api
    serve.run(build_risk(settings), name=RISK_APP, route_prefix=None)  # models_dir is empty
    try:
        body = wait_for(lambda: _ready_body(client, "model", lambda s: "no answer" not in s), 30, "the model check")
        assert body["checks"]["model"].startswith("not ready: ")
        assert "not deployed" not in body["checks"]["model"]
    finally:
        serve.delete(RISK_APP)


def test_ready_is_200_with_every_check_ok_once_a_model_is_served(api, tmp_path):
    client, settings, _ = api
    from domain.risk_model import TrainingParams
    from domain.risk_model.dataset import DatasetSpec, build_dataset
    from domain.risk_model.training import train
    from storage.files.model_artifacts import save_artifact

    result = train(build_dataset(DatasetSpec(seed=4, drivers=30, days=1, exposure_years=10.0)),
                   TrainingParams(seed=1, gbm_max_iter=20), {"drivers": 30.0})
    version = save_artifact(tmp_path, result.spec, result.estimator, created_at="2026-01-01T00:00:00Z").name
    serve.run(build_risk(settings.with_overrides(models_dir=tmp_path)), name=RISK_APP, route_prefix=None)
    try:
        response = wait_for(lambda: (r := client.get("/health/ready")).status_code == 200 and r, 30, "ready")
        checks = response.json()["checks"]
        assert checks == {"postgres": "ok", "redis": "ok", "kafka": "ok", "model": f"ok (model {version})"}
    finally:
        serve.delete(RISK_APP)


def _ready_body(client: httpx.Client, check: str, ok: callable) -> dict | None:
    response = client.get("/health/ready")
    assert response.status_code in (200, 503), response.text
    body = response.json()
    return body if ok(body["checks"][check]) else None


def test_one_metrics_scrape_shows_the_http_histogram_of_both_replicas(api):
    client, settings, driver_id = api
    headers = bearer(driver_token(settings, driver_id))
    served_by: set[str] = set()
    for _ in range(60):
        response = client.get(f"/api/v1/drivers/{driver_id}", headers=headers)
        assert response.status_code == 200, response.text
        served_by.add(response.headers["x-served-by"])
    assert len(served_by) == 2, f"the ingress used only {served_by}"

    def scraped() -> str | None:
        text = client.get("/metrics").text
        replicas = set(re.findall(
            r'^ray_http_request_duration_seconds_count\{[^}]*endpoint="/api/v1/drivers/\{driver_id\}"[^}]*'
            r'replica="([^"]+)"', text, re.M))
        replicas |= set(re.findall(
            r'^ray_http_request_duration_seconds_count\{[^}]*replica="([^"]+)"[^}]*'
            r'endpoint="/api/v1/drivers/\{driver_id\}"', text, re.M))
        families = ("ray_cache_hits_total", "ray_cache_misses_total", "ray_db_connection_pool_size")
        return text if replicas >= served_by and all(f"\n{f}{{" in text for f in families) else None

    text = wait_for(scraped, 60, "both replicas' histograms, cache and pool families in one scrape", every_s=2)
    assert f'endpoint="/api/v1/drivers/{driver_id}"' not in text  # route templates, never raw paths
    assert text.count("# TYPE ray_http_request_duration_seconds histogram") == 1
