"""Who sees /metrics and the details of /health/ready (deployments.api.operator), the brief reuse of their results
(deployments.api.recent), the merge of a cluster scrape off the event loop, and the docs switch."""

from __future__ import annotations

import asyncio
import threading

import httpx
import pytest
from fastapi import HTTPException
from starlette.requests import Request

from config.settings import Settings
from deployments.api.app import create_app
from deployments.api.auth import TokenCache, issue_token
from deployments.api.operator import require_operator, sees_details
from deployments.api.recent import Recent
from deployments.metrics import scrape_cluster

TOKEN = "operator-token-" + "x" * 32
SECRETS = {"jwt_secret_key": "s" * 48, "database_url": "postgresql://app:Str0ng-pw@db/autoins",
           "redis_url": "redis://:Str0ng-pw@cache:6379/0", "model_signing_key": "m" * 40,
           "allow_plaintext_links": True}
LOCAL = Settings(jwt_secret_key="s" * 48)
LOCAL_WITH_TOKEN = Settings(jwt_secret_key="s" * 48, operator_token=TOKEN)
STAGING = Settings(environment="staging", **SECRETS)
STAGING_WITH_TOKEN = Settings(environment="staging", operator_token=TOKEN, **SECRETS)
DEV_ON_ALL_INTERFACES = Settings(http_host="0.0.0.0", **SECRETS)


class _State:
    def __init__(self, settings: Settings) -> None:
        self.settings, self.tokens = settings, TokenCache()


class _App:
    def __init__(self, settings: Settings) -> None:
        self.state = _State(settings)


def _request(settings: Settings, authorization: str | None = None) -> Request:
    headers = [(b"authorization", authorization.encode())] if authorization else []
    return Request({"type": "http", "method": "GET", "path": "/metrics", "headers": headers, "app": _App(settings)})


def _status(settings: Settings, authorization: str | None = None) -> int:
    try:
        asyncio.run(require_operator(_request(settings, authorization)))
    except HTTPException as refused:
        return refused.status_code
    return 200


def test_metrics_need_the_operator_token_wherever_one_is_configured():
    for settings in (LOCAL_WITH_TOKEN, STAGING_WITH_TOKEN):
        assert _status(settings, f"Bearer {TOKEN}") == 200
        assert _status(settings) == 401
        assert _status(settings, f"Bearer {TOKEN}x") == 401
        assert _status(settings, f"Basic {TOKEN}") == 401
        admin = issue_token(settings, user_id="a", role="admin", driver_id=None)
        assert _status(settings, f"Bearer {admin}") == 401  # an admin's JWT is not a scrape token


def test_without_a_token_metrics_are_open_only_to_development_on_loopback():
    assert _status(LOCAL) == 200
    assert _status(STAGING) == 403
    assert _status(DEV_ON_ALL_INTERFACES) == 403


@pytest.mark.parametrize("settings", [STAGING_WITH_TOKEN, LOCAL_WITH_TOKEN])
def test_readiness_details_go_to_the_operator_and_admins_only(settings):
    admin = issue_token(settings, user_id="a", role="admin", driver_id=None)
    driver = issue_token(settings, user_id="d", role="driver", driver_id="driver0001")
    assert sees_details(_request(settings, f"Bearer {TOKEN}"))
    assert sees_details(_request(settings, f"Bearer {admin}"))
    for header in (None, f"Bearer {driver}", "Bearer not.a.jwt", "Bearer", f"Bearer {admin}x"):
        assert not sees_details(_request(settings, header)), header


def test_without_a_token_readiness_details_are_open_only_to_development_on_loopback():
    assert sees_details(_request(LOCAL))
    assert not sees_details(_request(STAGING))


def test_docs_are_not_served_in_production_unless_enabled():
    def paths(settings: Settings) -> set[str]:
        return {getattr(route, "path", "") for route in create_app(settings).routes}

    production = Settings(environment="production", **SECRETS)
    assert not {"/docs", "/redoc", "/openapi.json"} & paths(production)
    assert {"/docs", "/redoc", "/openapi.json"} <= paths(production.with_overrides(api_docs_enabled=True))
    assert {"/docs", "/redoc", "/openapi.json"} <= paths(STAGING)


# -- Recent --------------------------------------------------------------------------------------------


def test_concurrent_callers_share_one_computation_and_reuse_it_until_it_is_stale():
    now = [0.0]
    recent: Recent[int] = Recent(5.0, clock=lambda: now[0])

    async def scenario() -> list[int]:
        async def compute() -> int:
            await asyncio.sleep(0.01)
            return recent.computed + 1

        first = await asyncio.gather(*(recent.get(compute) for _ in range(20)))
        now[0] = 4.9
        cached = await recent.get(compute)
        now[0] = 5.0
        fresh = await recent.get(compute)
        return [*set(first), cached, fresh]

    assert asyncio.run(scenario()) == [1, 1, 2]
    assert recent.computed == 2


def test_a_failed_computation_reaches_every_waiter_and_is_not_kept():
    recent: Recent[str] = Recent(60.0)
    calls = []

    async def scenario() -> str:
        async def failing() -> str:
            calls.append("fail")
            await asyncio.sleep(0.01)
            raise ConnectionError("down")

        results = await asyncio.gather(*(recent.get(failing) for _ in range(3)), return_exceptions=True)
        assert all(isinstance(r, ConnectionError) for r in results)

        async def working() -> str:
            return "ok"

        return await recent.get(working)

    assert asyncio.run(scenario()) == "ok" and calls == ["fail"]


def test_a_caller_that_goes_away_does_not_cancel_the_others():
    recent: Recent[str] = Recent(60.0)

    async def scenario() -> str:
        async def slow() -> str:
            await asyncio.sleep(0.05)
            return "merged"

        impatient = asyncio.create_task(recent.get(slow))
        patient = asyncio.create_task(recent.get(slow))
        await asyncio.sleep(0.01)
        impatient.cancel()
        return await patient

    assert asyncio.run(scenario()) == "merged"


# -- the cluster scrape --------------------------------------------------------------------------------


def test_the_scrape_merges_off_the_event_loop(monkeypatch):
    import deployments.metrics as metrics

    merged_on: list[str] = []
    real = metrics.merge_exposition

    def recording(texts):
        merged_on.append(threading.current_thread().name)
        return real(texts)

    monkeypatch.setattr(metrics, "merge_exposition", recording)
    transport = httpx.MockTransport(lambda request: httpx.Response(
        200, text=f"# TYPE up gauge\nup{{node=\"{request.url.host}\"}} 1\n"))

    async def scenario():
        async with httpx.AsyncClient(transport=transport) as client:
            return await scrape_cluster(client, ["a:1", "b:2"]), threading.current_thread().name

    result, loop_thread = asyncio.run(scenario())
    assert result.text.count("# TYPE up gauge") == 1 and 'node="a"' in result.text and 'node="b"' in result.text
    assert merged_on and merged_on[0] != loop_thread
