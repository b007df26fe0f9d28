"""The request guard (deployments.api.request_guard): size per route class by Content-Length and by streamed
bytes, bodyless methods, JSON media type, and plain-JSON vetting — all before the app parses anything."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from fastapi import FastAPI, Request
from pydantic import BaseModel

from config.settings import Settings
from deployments.api.request_guard import (
    MAX_JSON_DEPTH,
    RequestGuard,
    body_rule,
    json_depth,
    json_problem,
)
from deployments.api.routers.telematics import BYTES_PER_READING

SETTINGS = Settings(ingest_max_readings=2)
SMALL, DEFAULT = SETTINGS.body_max_bytes_small, SETTINGS.body_max_bytes_default
INGEST_MAX = 2 * BYTES_PER_READING


@pytest.mark.parametrize(
    ("method", "path", "route_class", "limit"),
    [
        ("POST", "/api/v1/auth/login", "auth", SMALL),
        ("POST", "/api/v1/admin/drivers", "admin_write", SMALL),
        ("PATCH", "/api/v1/admin/users/u1", "admin_write", SMALL),
        ("POST", "/api/v1/telematics/events", "ingest", INGEST_MAX),
        ("POST", "/api/v1/admin/telematics/import", "ingest", INGEST_MAX),  # the admin import: ingest's body
        ("POST", "/api/v1/admin/devices/d1/revoke", "admin_write", SMALL),
        ("POST", "/api/v1/unknown", "default", DEFAULT),
        ("GET", "/api/v1/admin/drivers", "default", DEFAULT),
    ],
)
def test_each_request_falls_in_one_route_class(method, path, route_class, limit):
    rule = body_rule(SETTINGS, method, path)
    assert (rule.route_class, rule.max_bytes) == (route_class, limit)
    assert rule.check_json is (route_class != "ingest")


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1), "nested deeper"),
        (b'{"a": ' * 5000 + b"1" + b"}" * 5000, "nested deeper"),
        (b'{"username": "a", "username": "admin"}', "duplicate key 'username'"),
        (b'{"x": NaN}', "NaN is not JSON"),
        (b'{"x": -Infinity}', "-Infinity is not JSON"),
        (b'{"x": "\xff\xfe"}', "not UTF-8"),
        (b'{"x": "a\x00b"}', "Invalid control character"),
        (b'{"x": "a\\u0000b"}', "NUL characters"),
        (b'{"x": ' + b"9" * 10_000 + b"}", "limit"),  # int digits past sys.get_int_max_str_digits
        (b'{"x": ', "Expecting value"),
        (b"", "Expecting value"),
    ],
)
def test_bodies_that_are_not_plain_json_are_named(body, problem):
    found = json_problem(body)
    assert found is not None and problem in found, found
    assert "\n" not in found


def test_plain_json_passes_and_brackets_inside_strings_do_not_count_as_depth():
    brackets = "[{" * 100
    assert json_problem(json.dumps({"username": brackets, "password": "x", "n": [[1], {"a": [2]}]}).encode()) is None
    assert json_depth(json.dumps({"s": brackets, "l": [[[1]]]})) == 4
    assert json_depth('[' * 40 + ']' * 40) == MAX_JSON_DEPTH + 1  # stops counting once past the limit


# -- the middleware on a small app ------------------------------------------------------------------


class Login(BaseModel):
    username: str
    password: str


def _app() -> tuple[FastAPI, list[str]]:
    calls: list[str] = []
    app = FastAPI()

    @app.post("/api/v1/auth/login")
    async def login(body: Login) -> dict:
        calls.append("login")
        return {"user": body.username}

    @app.post("/api/v1/telematics/events")
    async def ingest(request: Request) -> dict:
        calls.append("ingest")
        return {"bytes": len(await request.body())}

    @app.get("/api/v1/drivers/me")
    async def me() -> dict:
        calls.append("me")
        return {"ok": True}

    app.add_middleware(RequestGuard, rule_for=lambda method, path: body_rule(SETTINGS, method, path))
    return app, calls


async def _call(app, method: str, path: str, **kwargs) -> httpx.Response:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        return await client.request(method, path, **kwargs)


JSON = {"content-type": "application/json"}


def test_a_declared_length_over_the_limit_is_413_before_the_app_runs():
    app, calls = _app()
    for path, limit in (("/api/v1/auth/login", SMALL), ("/api/v1/telematics/events", INGEST_MAX)):
        response = asyncio.run(_call(app, "POST", path, content=b"x" * (limit + 1), headers=JSON))
        assert response.status_code == 413 and str(limit) in response.json()["detail"]
        assert response.headers["connection"] == "close"
    assert calls == []


def _streamed(chunks: list[bytes]):
    async def body():
        for chunk in chunks:
            yield chunk
    return body()


@pytest.mark.parametrize(("path", "limit"), [("/api/v1/auth/login", SMALL), ("/api/v1/telematics/events", INGEST_MAX)])
def test_a_streamed_body_is_counted_and_refused_once_it_passes_the_limit(path, limit):
    app, calls = _app()
    chunk = b" " * 4096
    response = asyncio.run(_call(app, "POST", path, content=_streamed([chunk] * (limit // 4096 + 2)), headers=JSON))
    assert response.status_code == 413, response.text
    assert response.json()["detail"].startswith("request body larger than")
    assert calls in ([], ["ingest"])  # ingest is refused while its route reads the body


def test_a_body_within_the_limit_reaches_the_app_intact():
    app, calls = _app()
    login = asyncio.run(_call(app, "POST", "/api/v1/auth/login", json={"username": "u", "password": "p"}))
    assert login.status_code == 200 and login.json() == {"user": "u"}
    streamed = asyncio.run(_call(app, "POST", "/api/v1/telematics/events", content=_streamed([b"{}"] * 10),
                                 headers=JSON))
    assert streamed.json() == {"bytes": 20}
    assert calls == ["login", "ingest"]


@pytest.mark.parametrize("method", ["GET", "DELETE"])
def test_a_method_without_a_body_refuses_one(method):
    app, calls = _app()
    response = asyncio.run(_call(app, method, "/api/v1/drivers/me", content=b"{}", headers=JSON))
    assert response.status_code == 400 and "takes no request body" in response.json()["detail"]
    assert asyncio.run(_call(app, "GET", "/api/v1/drivers/me")).status_code == 200
    assert calls == ["me"]


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded",
                                          "multipart/form-data; boundary=x", "application/xml"])
def test_a_body_that_is_not_declared_json_is_415(content_type):
    app, calls = _app()
    headers = {"content-type": content_type} if content_type else {}
    response = asyncio.run(_call(app, "POST", "/api/v1/auth/login", content=b'{"username":"u","password":"p"}',
                                 headers=headers))
    assert response.status_code == 415 and response.json()["detail"] == "Content-Type must be application/json"
    assert calls == []


def test_json_with_a_charset_or_a_json_suffix_is_accepted():
    app, _ = _app()
    for content_type in ("application/json; charset=utf-8", "application/merge-patch+json"):
        response = asyncio.run(_call(app, "POST", "/api/v1/auth/login", content=b'{"username":"u","password":"p"}',
                                     headers={"content-type": content_type}))
        assert response.status_code == 200, (content_type, response.text)


@pytest.mark.parametrize("body", [b"[" * 100 + b"]" * 100, b'{"username":"u","username":"v","password":"p"}',
                                  b'{"username":"u","password":NaN}', b'{"username":"\xc3\x28","password":"p"}',
                                  b'{"username":"u\\u0000","password":"p"}', b'{"username":'])
def test_a_json_route_answers_400_for_a_body_that_is_not_plain_json(body):
    app, calls = _app()
    response = asyncio.run(_call(app, "POST", "/api/v1/auth/login", content=body, headers=JSON))
    assert response.status_code == 400 and response.json()["detail"].startswith("body is not acceptable JSON: ")
    assert calls == []


def test_a_garbled_content_length_is_400():
    app, calls = _app()

    async def scenario() -> list[dict]:
        sent: list[dict] = []

        async def receive():
            return {"type": "http.request", "body": b"{}", "more_body": False}

        async def send(message):
            sent.append(message)

        scope = {"type": "http", "method": "POST", "path": "/api/v1/auth/login", "headers": [
            (b"content-length", b"-5"), (b"content-type", b"application/json")], "query_string": b""}
        await app(scope, receive, send)
        return sent

    sent = asyncio.run(scenario())
    assert sent[0]["status"] == 400 and calls == []
