"""The API platform on Ray Serve (two ApiGateway replicas behind the HAProxy ingress): request ids, health,
one /metrics scrape covering both replicas, the operator surfaces closed to the public, bodies bounded at the
ingress, and authenticated reads that stay fast under a flood of anonymous logins (docs/SECURITY.md)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import uuid

import httpx
import pytest
from ray import serve

from config.names import API_APP, RISK_APP
from config.settings import PROJECT_ROOT
from deployments.builder import API_ROUTE, build_api_app, build_risk
from tests.integration.serve_support import (
    admin_token,
    bearer,
    driver_token,
    insert_drivers,
    log_lines_containing,
    run_driver_ids,
    settings_with_topics,
    wait_for,
)

pytestmark = pytest.mark.timeout(300)
OPERATOR_TOKEN = "platform-test-operator-" + uuid.uuid4().hex
OPERATOR = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}


@pytest.fixture(scope="module")
def api(serve_session, migrated_settings, kafka_bootstrap, tmp_path_factory):
    settings = settings_with_topics(migrated_settings, kafka_bootstrap, api_num_replicas=2, access_log_all=True,
                                    models_dir=tmp_path_factory.mktemp("no-models"), operator_token=OPERATOR_TOKEN)
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
    response = client.get("/health/ready", headers=OPERATOR)
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
    version = save_artifact(tmp_path, result.spec, result.estimator, created_at="2026-01-01T00:00:00Z",
                            signing_key=settings.model_signing_key).name
    serve.run(build_risk(settings.with_overrides(models_dir=tmp_path)), name=RISK_APP, route_prefix=None)
    try:
        response = wait_for(lambda: (r := client.get("/health/ready", headers=OPERATOR)).status_code == 200 and r,
                            30, "ready")
        checks = response.json()["checks"]
        assert checks == {"postgres": "ok", "redis": "ok", "kafka": "ok", "model": f"ok (model {version})"}
    finally:
        serve.delete(RISK_APP)


def _ready_body(client: httpx.Client, check: str, ok: callable) -> dict | None:
    response = client.get("/health/ready", headers=OPERATOR)
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
        text = client.get("/metrics", headers=OPERATOR).text
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


# -- operator surfaces, bounded bodies, login flood (docs/SECURITY.md) ---------------------------------------


def test_the_public_and_drivers_see_only_the_readiness_status(api):
    client, settings, driver_id = api
    for headers in ({}, bearer(driver_token(settings, driver_id)), {"Authorization": "Bearer wrong"}):
        response = client.get("/health/ready", headers=headers)
        assert response.status_code == 503 and response.json() == {"status": "not ready"}, response.text
    admin = client.get("/health/ready", headers=bearer(admin_token(settings))).json()
    assert admin["failed"] == ["model"] and admin["replica"]


def test_metrics_answer_only_the_operator_token(api):
    client, settings, _ = api
    for headers in ({}, {"Authorization": "Bearer wrong"}, bearer(admin_token(settings))):
        response = client.get("/metrics", headers=headers)
        assert response.status_code == 401 and "operator token" in response.json()["detail"], response.text
        assert "ray_" not in response.text
    assert client.get("/metrics", headers=OPERATOR).status_code == 200


def test_a_large_login_body_is_refused_through_the_ingress(api):
    client, _, _ = api
    body = b'{"username": "' + b"a" * 1_000_000 + b'", "password": "x"}'
    declared = client.post("/api/v1/auth/login", content=body, headers={"content-type": "application/json"})

    def chunks():
        for _ in range(50 * 16):  # 50 MB, chunked: no Content-Length to refuse by
            yield b" " * 65_536

    streamed = client.post("/api/v1/auth/login", content=chunks(), headers={"content-type": "application/json"})
    for response in (declared, streamed):
        assert response.status_code == 413, response.text[:300]
        assert "larger than 16384 bytes" in response.json()["detail"]


FLOOD_RATE = 80  # logins/s: the probe's "~40 requests/s per core saturates the host", on this 2-core machine
CYCLES, FLOOD_S, QUIET_S = 5, 2.5, 4.0
READ_EVERY_S = 0.004  # the reading client: one authenticated GET after another, ~150 a second


def _p95(values: list[float]) -> float:
    return sorted(values)[int(len(values) * 0.95) - 1]


def test_a_flood_of_unknown_user_logins_leaves_authenticated_reads_fast(api, serve_session):
    """While FLOOD_RATE anonymous logins/s of unknown usernames arrive, the p95 of an authenticated GET stays
    within 2 × its idle p95. Flood and quiet alternate (CYCLES × FLOOD_S on / QUIET_S off) and every GET is
    sorted into the phase it was sent in (login_flood.phase_at), so the shared machine's drifting load falls on
    both alike. The flood runs in its own process at the lowest priority: on a real site the attacker's CPU is
    not the server's."""
    from tests.integration.login_flood import phase_at

    client, settings, driver_id = api
    headers, url = bearer(driver_token(settings, driver_id)), f"/api/v1/drivers/{driver_id}"
    for _ in range(50):  # warm: caches, keep-alive connections
        assert client.get(url, headers=headers).status_code == 200
    start = time.monotonic() + 1.5
    flood = subprocess.Popen(
        [sys.executable, "-m", "tests.integration.login_flood", serve_session, str(FLOOD_RATE), str(start),
         str(CYCLES), str(FLOOD_S), str(QUIET_S)],
        cwd=PROJECT_ROOT, stdout=subprocess.PIPE, text=True, preexec_fn=lambda: os.nice(19))
    samples: dict[str, list[float]] = {"idle": [], "flood": []}
    try:
        end = start + CYCLES * (FLOOD_S + QUIET_S)
        while (sent := time.monotonic()) < end:
            response = client.get(url, headers=headers)
            took_ms = (time.monotonic() - sent) * 1000
            assert response.status_code == 200, response.text
            if (phase := phase_at(sent, start, FLOOD_S, QUIET_S, CYCLES)) is not None:
                samples[phase].append(took_ms)
            time.sleep(READ_EVERY_S)
        out, _ = flood.communicate(timeout=60)
    finally:
        if flood.poll() is None:
            flood.kill()
    counts = json.loads(out)
    p95_idle, p95_flood = _p95(samples["idle"]), _p95(samples["flood"])
    print(f"login flood {FLOOD_RATE}/s, {CYCLES} × {FLOOD_S:g} s: {counts}; authenticated GET p95 idle "
          f"{p95_idle:.2f} ms ({len(samples['idle'])} samples), under flood {p95_flood:.2f} ms "
          f"({len(samples['flood'])}); p50 {sorted(samples['idle'])[len(samples['idle']) // 2]:.2f} / "
          f"{sorted(samples['flood'])[len(samples['flood']) // 2]:.2f} ms")
    assert sum(counts.values()) >= FLOOD_RATE * FLOOD_S * CYCLES * 0.8, counts
    # Every answer is a refusal; some were checked (401). Whether the cap also refused some (429) depends on how
    # fast this host verifies: at 80/s two replicas keep up on a quiet machine, so 429s are not asserted here.
    # The cap itself is tested deterministically in tests/unit/test_login.py and test_api_authz.py.
    assert set(counts) <= {"401", "429"} and counts.get("401", 0) > 0, counts
    assert not any(k.startswith("5") for k in counts), counts
    assert p95_flood <= 2 * p95_idle, (p95_idle, p95_flood)
