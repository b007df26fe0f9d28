"""Pure pieces of the REST API: pagination, readable 422s, factors, tariffs, demo logins."""

from __future__ import annotations

import uuid
from decimal import Decimal

import msgspec
import pytest
from pydantic import ValidationError

from autoins.seed import demo_password, policy_number
from deployments.api.app import readable_errors
from deployments.api.schemas import page_offset
from deployments.api.schemas_admin import DriverCreate, DriverPatch, PolicyCreate, UserCreate
from domain import pricing
from domain.scoring import PolicyTerms, quote_policy
from usecases.driver_queries import top_factors


@pytest.mark.parametrize(("page", "size", "offset"), [(1, 20, 0), (2, 20, 20), (3, 1, 2), (10, 100, 900)])
def test_page_offset_is_the_rows_before_a_one_based_page(page, size, offset):
    assert page_offset(page, size) == offset


@pytest.mark.parametrize(("page", "size"), [(0, 20), (1, 0), (-1, 5)])
def test_page_offset_refuses_pages_before_the_first(page, size):
    with pytest.raises(ValueError, match="≥ 1"):
        page_offset(page, size)


def test_validation_errors_keep_fastapis_shape_and_name_the_field():
    errors = [{"loc": ("query", "page_size"), "msg": "Input should be less than or equal to 100", "type": "x"},
              {"loc": ("body", "email"), "msg": "Value error, unknown domain", "type": "value_error"},
              {"loc": ("body", 0), "msg": "JSON decode error", "type": "json_invalid"}]
    assert readable_errors(errors) == [
        {"loc": ["query", "page_size"], "msg": "Input should be less than or equal to 100", "type": "x",
         "field": "query.page_size"},
        {"loc": ["body", "email"], "msg": "unknown domain", "type": "value_error", "field": "email"},
        {"loc": ["body", 0], "msg": "JSON decode error", "type": "json_invalid", "field": "body"},
    ]


def test_top_factors_are_read_from_either_stored_shape_and_junk_is_skipped():
    stored = {"top_factors": [{"name": "night_share", "contribution": 0.25}, ["phone_use_share", -0.1], "junk", [1]]}
    assert [(f.name, f.contribution) for f in top_factors(stored)] == [("night_share", 0.25), ("phone_use_share", -0.1)]
    assert top_factors(None) == [] and top_factors({}) == []


def test_the_quotes_tariff_comes_from_the_policy_and_falls_back_to_the_defaults():
    policy = PolicyTerms(policy_id=uuid.uuid4(), base_premium=Decimal("700.00"), per_km_rate=Decimal("0.0100"),
                         currency="GBP", current_premium=Decimal("650.00"))
    priced = quote_policy(50.0, 10_000.0, policy, pricing.DEFAULT_RULES)
    assert (priced.band_premium, priced.per_km_premium, priced.currency, priced.previous_premium) == (
        Decimal("700.00"), Decimal("100.00"), "GBP", Decimal("650.00"))
    bare = quote_policy(50.0, 10_000.0, None, pricing.DEFAULT_RULES)
    assert bare == pricing.quote(50.0, 10_000.0, previous_premium=None, rules=pricing.DEFAULT_RULES)
    free = msgspec.structs.replace(policy, base_premium=Decimal("0"), current_premium=Decimal("0"))
    zero = quote_policy(50.0, 10_000.0, free, pricing.DEFAULT_RULES)
    assert (zero.band_premium, zero.previous_premium) == (pricing.DEFAULT_RULES.base_annual_premium, None)


def test_demo_logins_follow_the_plans_load_test():
    assert demo_password("driver0001") == "password0001"
    assert policy_number("driver0042") == "POL-driver0042"


@pytest.mark.parametrize(
    ("model", "fields", "message"),
    [
        (DriverCreate, {"driver_id": "a b", "first_name": "A", "last_name": "B", "email": "a@b"}, "pattern"),
        (DriverCreate, {"driver_id": "d1", "first_name": "A\x00", "last_name": "B", "email": "a@b"}, "pattern"),
        (DriverCreate, {"driver_id": "d1", "first_name": "A", "last_name": "B", "email": "a@b",
                        "timezone": "Mars/Olympus"}, "unknown IANA time zone"),
        (DriverPatch, {"first_name": None}, "first_name cannot be null"),
        (PolicyCreate, {"driver_id": "d1", "policy_number": "P1", "base_premium": "500",
                        "effective_date": "2026-01-01", "expiration_date": "2026-01-01"}, "after effective_date"),
        (PolicyCreate, {"driver_id": "d1", "policy_number": "P1", "base_premium": "1234567890123",
                        "effective_date": "2026-01-01", "expiration_date": "2027-01-01"}, "digits"),
        (UserCreate, {"username": "someone", "password": "long-enough", "role": "driver"}, "needs a driver_id"),
        (UserCreate, {"username": "someone", "password": "short", "role": "admin"}, "at least 8"),
    ],
)
def test_bad_admin_input_is_refused_with_a_message_naming_the_problem(model, fields, message):
    with pytest.raises(ValidationError, match=message):
        model.model_validate(fields)


@pytest.mark.parametrize("environment", ["staging", "production"])
def test_seeding_refuses_every_environment_but_development(environment):
    import asyncio

    from autoins.errors import UserFacingError
    from autoins.seed import seed_demo
    from config.settings import Settings

    settings = Settings(environment=environment, jwt_secret_key="s" * 40,
                        database_url="postgresql://app:Str0ng-pw@db/autoins", redis_url="redis://:Str0ng-pw@r:6379/0",
                        model_signing_key="m" * 40, allow_plaintext_links=True)
    with pytest.raises(UserFacingError, match=f"only in development \\(ENVIRONMENT is {environment}\\)"):
        asyncio.run(seed_demo(settings, 3))


def test_the_app_survives_serves_pickling_of_the_ingress_app():
    """`@serve.ingress(app)` pickles the app into each replica; closures must keep their dependencies."""
    import asyncio

    import httpx
    from ray import cloudpickle
    from ray._common.serialization import pickle_dumps
    from ray.serve._private.utils import ensure_serialization_context

    from config.settings import Settings
    from deployments.api.app import create_app

    ensure_serialization_context()
    app = cloudpickle.loads(pickle_dumps(create_app(Settings()), error_msg="cannot pickle the app"))

    async def statuses() -> dict[str, int]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://replica") as client:
            paths = ["/api/v1/drivers/me", "/api/v1/drivers/driver0001/trips?page=2", "/api/v1/risk/me/score",
                     "/api/v1/policies/driver0001/quote", "/api/v1/admin/dashboard"]
            return {path: (await client.get(path)).status_code for path in paths}

    assert set(asyncio.run(statuses()).values()) == {401}


def test_the_use_case_views_encode_the_fields_the_openapi_models_document():
    from deployments.api import schemas
    from usecases import views

    pairs = [(views.DriverView, schemas.DriverOut), (views.TripView, schemas.TripOut),
             (views.RiskScoreView, schemas.RiskScoreOut), (views.RiskHistoryView, schemas.RiskHistoryItem),
             (views.PolicyView, schemas.PolicyOut), (views.PoliciesView, schemas.PoliciesOut),
             (views.QuoteView, schemas.QuoteOut), (views.FactorView, schemas.FactorOut),
             (views.EpisodeView, schemas.EpisodeOut), (views.RouteView, schemas.TripRouteOut),
             (views.RouteGeometryView, schemas.RouteGeometryOut),
             (views.RoutePropertiesView, schemas.RoutePropertiesOut),
             (views.HarshByGradeView, schemas.HarshByGradeOut), (views.GradeCountsView, schemas.GradeCountsOut)]
    for view, model in pairs:
        assert view.__struct_fields__ == tuple(model.model_fields), view.__name__


def test_the_access_log_keeps_errors_and_slow_requests_unless_told_to_log_all():
    from config.settings import Settings
    from deployments.api.observability import access_log_policy

    default = access_log_policy(Settings(access_log_slow_ms=500))
    assert not default(200, 0.010) and not default(304, 0.499)
    assert default(404, 0.001) and default(500, 0.001) and default(200, 0.5)
    assert access_log_policy(Settings(access_log_all=True))(200, 0.001)
