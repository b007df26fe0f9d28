"""Property tests over the app's own /openapi.json (schemathesis, ASGI, lifespan included): every operation,
with generated valid and invalid input, authenticated as an admin and as a driver, never answers 5xx, and
answers only the status codes, content types and bodies its schema documents. Derandomized and small, so
it runs in well under a minute and fails the same way twice."""

from __future__ import annotations

import asyncio
import uuid

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from deployments.api.app import create_app
from deployments.api.auth import issue_token
from tests.integration.inprocess_api import FakeRiskModel, bearer, drop_seeded, insert_trips, seeded_database

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
# The platform's routes (H3) and the ingest endpoint, which needs Kafka, are tested in their own files.
EXAMPLES = 8  # per operation, generation mode and login
PLATFORM = r"^/(health|metrics|api/v1/telematics|api/v1/admin/telematics)"


@pytest.fixture(scope="module")
def api_settings(base_settings):
    settings = asyncio.run(seeded_database(base_settings, drivers=2))
    asyncio.run(insert_trips(settings, "driver0001", 3))
    yield settings
    asyncio.run(drop_seeded(settings))


@pytest.fixture(scope="module")
def tokens(api_settings) -> dict[str, dict[str, str]]:
    return {
        "admin": bearer(issue_token(api_settings, user_id=str(uuid.uuid4()), role="admin", driver_id=None)),
        "driver": bearer(issue_token(api_settings, user_id=str(uuid.uuid4()), role="driver", driver_id="driver0001")),
    }


@pytest.fixture(scope="module")
def api_schema(api_settings):
    app = create_app(api_settings, risk_model=FakeRiskModel())
    return schemathesis.openapi.from_asgi("/openapi.json", app).exclude(path_regex=PLATFORM)


# schemathesis' lazy `from_fixture` loader reads a private pytest attribute that pytest 9 removed, so the
# operations are walked here, each with its own small hypothesis run, positive then negative input.
def test_no_operation_answers_a_server_error_or_an_undocumented_response(api_schema, tokens):
    failures: list[str] = []
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 25, [op.label for op in operations]
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                      suppress_health_check=list(HealthCheck))
            def call(case):
                for headers in tokens.values():
                    case.call_and_validate(headers=headers, checks=CHECKS)

            try:
                call()
            except Exception as error:  # collect every operation's failure, report them together
                failures.append(f"{operation.label} [{mode.value}]: {str(error)[:1500]}")
    assert not failures, "\n\n".join(failures)
