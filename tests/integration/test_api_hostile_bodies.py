"""A corpus of hostile request bodies sent to EVERY operation of the app's own OpenAPI document, anonymously, as a
driver and as an admin (in-process, lifespan included, real PostgreSQL/Redis): every answer is a 4xx, never a
2xx or a 5xx (docs/SECURITY.md §2). The sibling of test_api_schemathesis.py, which generates valid-looking
input; this one sends what a parser must not be trusted with."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from autoins.seed import ADMIN_PASSWORD, ADMIN_USERNAME
from deployments.api.auth import issue_token
from deployments.api.routers.telematics import BYTES_PER_READING
from tests.integration.inprocess_api import bearer, client_for, drop_seeded, running_api, seeded_database

pytestmark = pytest.mark.timeout(180)

JSON = "application/json"
HOSTILE_CLIENT = "10.66.0.1"  # its failed logins must not throttle other tests' clients


def corpus(ingest_max_bytes: int) -> dict[str, tuple[bytes, str]]:
    """name → (body, content type). Each would be parsed by something if nothing stood in front of it."""
    credentials = f'"username": "{ADMIN_USERNAME}", "password": "{ADMIN_PASSWORD}"'
    return {
        "deep_nesting_small": (b"[" * 5_000 + b"]" * 5_000, JSON),
        "deep_nesting_in_object": (b'{"readings": ' + b"[" * 3_000 + b"]" * 3_000 + b"}", JSON),
        "deep_nesting_large": (b"[" * 100_000 + b"]" * 100_000, JSON),
        "huge_string": (b'{"username": "' + b"a" * (ingest_max_bytes + 1) + b'", "password": "x"}', JSON),
        "long_string_within_limits": (b'{"username": "' + b"a" * 12_000 + b'", "password": "x"}', JSON),
        "nul_bytes_raw": (b'{"username": "adm\x00in", "password": "x\x00"}', JSON),
        "nul_bytes_escaped": (b'{"username": "admin\\u0000", "password": "x", "readings": ["\\u0000"]}', JSON),
        "invalid_utf8": (b'{"username": "\xff\xfe\xc3\x28", "password": "\xed\xa0\x80"}', JSON),
        # would log the admin in (and create nothing else) if a parser kept either duplicate
        "duplicate_keys": (f'{{{credentials}, "username": "{ADMIN_USERNAME}"}}'.encode(), JSON),
        "million_digit_number": (b'{"readings": [' + b"7" * 1_000_000 + b"]}", JSON),
        "number_past_int_digits": (b'{"username": "u", "password": "p", "n": ' + b"9" * 5_000 + b"}", JSON),
        "nan_and_infinity": (b'{"username": NaN, "password": Infinity}', JSON),
        "truncated_json": (b'{"username": "admin", "password": ', JSON),
        "not_json_at_all": (b"\x00\x01\x02\xff binary", JSON),
        "json_as_text_plain": (f"{{{credentials}}}".encode(), "text/plain"),
        "form_encoded": (f"username={ADMIN_USERNAME}&password={ADMIN_PASSWORD}".encode(),
                         "application/x-www-form-urlencoded"),
        "xml": (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><x>&a;</x>', "application/xml"),
        "multipart": (b"--b\r\nContent-Disposition: form-data; name=\"f\"\r\n\r\nv\r\n--b--\r\n",
                      "multipart/form-data; boundary=b"),
        "no_content_type": (f"{{{credentials}}}".encode(), ""),
    }


@pytest.fixture(scope="module")
def api_settings(base_settings):
    settings = asyncio.run(seeded_database(base_settings, drivers=2))
    yield settings
    asyncio.run(drop_seeded(settings))


def _concrete(path: str) -> str:
    values = {"driver_id": "driver0001"}
    out = path
    while "{" in out:
        start, end = out.index("{"), out.index("}")
        name = out[start + 1:end]
        out = out[:start] + values.get(name, str(uuid.uuid4())) + out[end + 1:]
    return out


async def test_every_operation_answers_hostile_bodies_with_a_4xx(api_settings):
    tokens = {
        "anonymous": {},
        "driver": bearer(issue_token(api_settings, user_id=str(uuid.uuid4()), role="driver", driver_id="driver0001")),
        "admin": bearer(issue_token(api_settings, user_id=str(uuid.uuid4()), role="admin", driver_id=None)),
    }
    bodies = corpus(api_settings.ingest_max_readings * BYTES_PER_READING)
    failures: list[str] = []
    seen: dict[int, int] = {}
    async with running_api(api_settings) as (app, _), client_for(app, HOSTILE_CLIENT) as client:
        spec = (await client.get("/openapi.json")).json()
        operations = [(method.upper(), path) for path, item in spec["paths"].items() for method in item]
        assert len(operations) >= 30, operations
        for method, path in operations:
            for name, (body, content_type) in bodies.items():
                for who, headers in tokens.items():
                    sent = {**headers, **({"content-type": content_type} if content_type else {})}
                    response = await client.request(method, _concrete(path), content=body, headers=sent)
                    seen[response.status_code] = seen.get(response.status_code, 0) + 1
                    if not 400 <= response.status_code < 500:
                        failures.append(f"{method} {path} [{name}, {who}]: {response.status_code} "
                                        f"{response.text[:200]}")
                    elif response.headers.get("content-type", "").startswith(JSON):
                        assert response.json()["detail"], (method, path, name)
    print(f"{len(operations)} operations × {len(bodies)} bodies × {len(tokens)} callers: {sorted(seen.items())}")
    assert not failures, "\n".join(failures)


async def test_a_50_mb_login_body_is_refused_before_it_is_read(api_settings):
    async with running_api(api_settings) as (app, _), client_for(app, HOSTILE_CLIENT) as client:

        async def body():
            for _ in range(50 * 16):  # 50 MB in 64 KiB chunks, no Content-Length
                yield b" " * 65_536
            raise AssertionError("the guard read the whole body")

        response = await client.post("/api/v1/auth/login", content=body(), headers={"content-type": JSON})
    assert response.status_code == 413 and "larger than 16384 bytes" in response.json()["detail"]
