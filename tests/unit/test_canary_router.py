"""The API's rollout middleware without a network: the canary refuses what was not forwarded and sees the API's
own paths; the stable side forwards exactly the split's clients, answers again the safe requests the canary
fails, and keeps its probes and oversized bodies to itself."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from config.settings import Settings
from deployments.api.canary import CanaryRouter, forward_token
from domain.rollout import TrafficSplit, goes_to_canary

SETTINGS = Settings(_env_file=None, rollout_split_check_s=60)
CANARY = SETTINGS.with_overrides(rollout_role="canary", rollout_app_name="api-canary")


class FakeRedis:
    def __init__(self, split: TrafficSplit | None) -> None:
        self.value = split.encode() if split else None

    async def get(self, _key: str) -> bytes | None:
        return self.value


async def local_app(scope, receive, send) -> None:
    """The API below the router: echoes what it was asked, with the body it read."""
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    answer = json.dumps({"side": "stable", "path": scope["path"], "root_path": scope.get("root_path"),
                         "body": len(body)}).encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": answer})


def call(router: CanaryRouter, method: str, path: str, *, headers: dict[str, str] | None = None, body: bytes = b"",
         root_path: str = "") -> tuple[int, dict]:
    scope = {"type": "http", "method": method, "path": path, "raw_path": path.encode(), "root_path": root_path,
             "query_string": b"", "client": ("203.0.113.9", 5000),
             "headers": [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]}
    sent: list[dict] = []
    chunks = [body[i:i + 1000] for i in range(0, len(body), 1000)] or [b""]

    async def receive() -> dict:
        chunk = chunks.pop(0) if chunks else b""
        return {"type": "http.request", "body": chunk, "more_body": bool(chunks)}

    async def send(message: dict) -> None:
        sent.append(message)

    asyncio.run(router(scope, receive, send))
    status = sent[0]["status"]
    payload = b"".join(m.get("body", b"") for m in sent[1:])
    return status, json.loads(payload) if payload else {}


def stable_router(split: TrafficSplit | None, canary) -> tuple[CanaryRouter, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return canary(request)

    client = httpx.AsyncClient(transport=httpx.MockTransport(handler), base_url="http://ingress/_canary")
    return CanaryRouter(local_app, settings=SETTINGS, redis=lambda: FakeRedis(split), client=client), seen


def everyone(percent: int = 100) -> TrafficSplit:
    return TrafficSplit(target="api", version="v2", canary_app="api-canary", percent=percent)


ANSWERED = {"x-autoins-canary-answer": "1"}


def test_the_canary_answers_only_forwarded_requests_and_sees_the_api_s_own_paths():
    router = CanaryRouter(local_app, settings=CANARY, redis=lambda: None)
    assert call(router, "GET", "/_canary/api/v1/drivers/d1", root_path="/_canary")[0] == 404
    assert call(router, "GET", "/_canary/api/v1/drivers/d1", root_path="/_canary",
                headers={"x-autoins-canary": "guess"})[0] == 404
    token = forward_token(CANARY, "api-canary")
    status, seen = call(router, "GET", "/_canary/api/v1/drivers/d1", root_path="/_canary",
                        headers={"x-autoins-canary": token})
    assert status == 200 and seen["path"] == "/api/v1/drivers/d1" and seen["root_path"] == ""


def test_without_a_split_the_stable_side_serves_everyone_itself():
    router, forwarded = stable_router(None, lambda _r: httpx.Response(500))
    assert call(router, "GET", "/api/v1/drivers/d1", headers={"authorization": "Bearer a"})[1]["side"] == "stable"
    assert forwarded == []


def test_the_split_s_clients_are_forwarded_with_the_token_and_their_address():
    def canary(request: httpx.Request) -> httpx.Response:
        return httpx.Response(201, json={"side": "canary", "path": request.url.path}, headers=ANSWERED)

    split = everyone(30)
    router, forwarded = stable_router(split, canary)
    keys = [f"Bearer token-{i}" for i in range(60)]
    sides = {key: call(router, "POST", "/api/v1/telematics/events", headers={"authorization": key},
                       body=b"{}")[1]["side"] for key in keys}
    assert {k for k, side in sides.items() if side == "canary"} == {k for k in keys if goes_to_canary(k, 30)}
    first = forwarded[0]
    assert first.url.path == "/_canary/api/v1/telematics/events"
    assert first.headers["x-autoins-canary"] == forward_token(SETTINGS, "api-canary")
    assert first.headers["x-forwarded-for"] == "203.0.113.9"


@pytest.mark.parametrize(("method", "side"), [("GET", "stable"), ("POST", None)])
def test_a_canary_5xx_is_answered_again_by_the_stable_side_only_for_safe_methods(method, side):
    router, _ = stable_router(everyone(), lambda _r: httpx.Response(503, json={"detail": "broken build"},
                                                                   headers=ANSWERED))
    status, body = call(router, method, "/api/v1/drivers/d1", headers={"authorization": "Bearer a"}, body=b"{}")
    if side:
        assert (status, body["side"]) == (200, side)
    else:
        assert (status, body) == (503, {"detail": "broken build"})


def test_a_canary_that_does_not_answer_leaves_safe_requests_to_the_stable_side():
    def gone(_request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused")

    router, _ = stable_router(everyone(), gone)
    assert call(router, "GET", "/api/v1/drivers/d1", headers={"authorization": "Bearer a"}) == (
        200, {"side": "stable", "path": "/api/v1/drivers/d1", "root_path": "", "body": 0})


def test_probes_and_oversized_bodies_stay_on_the_stable_side():
    router, forwarded = stable_router(everyone(), lambda _r: httpx.Response(200, json={"side": "canary"},
                                                                           headers=ANSWERED))
    assert call(router, "GET", "/health/live")[1]["side"] == "stable"
    big = b"x" * (SETTINGS.ingest_max_readings * 16 * 1024 + 5000)
    status, body = call(router, "POST", "/api/v1/telematics/events", headers={"authorization": "Bearer a"}, body=big)
    assert (status, body["side"], body["body"]) == (200, "stable", len(big))  # the whole body reached it
    assert forwarded == []


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_an_answer_the_canary_did_not_give_is_given_again_by_the_stable_side(method):
    """The canary app removed while a replica's split is still fresh: the ingress hands /_canary/… to the stable
    app, whose 404 is not the canary's answer (no marker) and ran nothing, so any method is served here."""
    router, forwarded = stable_router(everyone(), lambda _r: httpx.Response(404, json={"detail": "Not Found"}))
    status, body = call(router, method, "/api/v1/drivers/d1", headers={"authorization": "Bearer a"}, body=b"{}")
    assert (status, body["side"]) == (200, "stable") and len(forwarded) == 1


def test_the_canary_marks_its_answers_and_the_stable_side_does_not_pass_the_mark_on():
    router = CanaryRouter(local_app, settings=CANARY, redis=lambda: None)
    sent: list[dict] = []
    scope = {"type": "http", "method": "GET", "path": "/_canary/x", "raw_path": b"/_canary/x", "root_path": "/_canary",
             "query_string": b"", "client": ("127.0.0.1", 1),
             "headers": [(b"x-autoins-canary", forward_token(CANARY, "api-canary").encode())]}

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    asyncio.run(router(scope, receive, send))
    assert (b"x-autoins-canary-answer", b"1") in sent[0]["headers"]
    stable, _ = stable_router(everyone(), lambda _r: httpx.Response(200, json={"side": "canary"}, headers=ANSWERED))
    outer: list[dict] = []
    scope = {**scope, "path": "/api/v1/x", "raw_path": b"/api/v1/x", "root_path": "",
             "headers": [(b"authorization", b"Bearer a")]}

    async def send_outer(message: dict) -> None:
        outer.append(message)

    asyncio.run(stable(scope, receive, send_outer))
    assert all(k != b"x-autoins-canary-answer" for k, _ in outer[0]["headers"])
