"""The FastAPI app behind the `ApiGateway` Serve deployment: routers, lifespan, error handlers.

`create_app(settings)` is plain FastAPI, so tests can also drive it in-process (httpx ASGITransport)
against real PostgreSQL/Redis/Kafka; `deployments.builder` wraps it in `@serve.ingress`.
Errors never surface as a bare 500: a database or Redis outage is a 503 with a message, an unavailable
risk model a 503, bad input a 422 whose message names the field, a write conflict a 409.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager, suppress

import asyncpg
from fastapi import FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from config.logging import get_logger
from config.rules import rules_in_force
from config.settings import Settings
from deployments.api.auth import TokenCache, hash_password
from deployments.api.canary import CanaryRouter
from deployments.api.observability import API_POOL, install_observability
from deployments.api.passwords import PasswordVerifier, ShedLoginsWhenFull
from deployments.api.recent import Recent
from deployments.api.request_guard import RequestGuard, body_rule
from deployments.api.resources import ApiResources
from deployments.api.routers import (
    auth,
    claims,
    disputes,
    drivers,
    health,
    metrics,
    policies,
    privacy,
    risk,
    telematics,
    trips,
)
from deployments.api.routers.admin import router as admin_router
from deployments.api.warming import warm_cache
from deployments.console.routes import install_console
from domain.disputes import DisputeConflict, DisputeRefused
from storage.postgres.admin_queries import PostgresAdminStore
from storage.postgres.claims import PostgresClaimStore
from storage.postgres.credentials import PostgresCredentials
from storage.postgres.devices import PostgresDeviceStore
from storage.postgres.disputes import PostgresDisputeStore
from storage.postgres.pool import create_pool
from storage.postgres.privacy import PostgresPrivacyStore
from storage.postgres.read_models import PostgresDriverReadModels
from storage.postgres.token_versions import PostgresTokenVersions
from storage.redis.cache import REDIS_ERRORS, MultiLevelCache
from storage.redis.client import create_redis
from storage.redis.invalidation import RedisSessionNotifier
from storage.redis.login_throttle import RedisLoginThrottle
from storage.redis.privacy import RedisPrivacyNotifier
from storage.serve.risk_model import ServeRiskModel
from usecases.admin import AdminWrites
from usecases.claims import Claims
from usecases.devices import Devices, DeviceTerms
from usecases.disputes import DisputeNotFound, Disputes, DisputeTerms
from usecases.driver_queries import DriverQueries, QueryTerms
from usecases.login import LoginPorts
from usecases.ports.admin_store import Conflict, MissingReference
from usecases.ports.clock import SystemClock
from usecases.ports.login import ThrottleRules
from usecases.ports.risk_model import RiskModel, RiskModelUnavailable
from usecases.privacy import PrivacyConsent
from usecases.sessions import Sessions

_log = get_logger("deployments.api")

DESCRIPTION = """Telematics usage-based auto insurance. Log in with `POST /api/v1/auth/login`, then send
`Authorization: Bearer <access_token>`. Drivers read only their own data (another driver's id is a 404);
admins read everything and manage drivers, policies and users under `/api/v1/admin`."""


ROUTERS = (auth.router, disputes.drivers, drivers.router, trips.router, disputes.trips, privacy.router, risk.router,
           policies.router, claims.router, telematics.router, admin_router, disputes.admin, health.router,
           metrics.router)


def create_app(settings: Settings, *, risk_model: RiskModel | None = None) -> FastAPI:
    """The API for these settings. `risk_model` replaces the Serve client (in-process tests use a fake)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        resources = await open_resources(settings, risk_model or ServeRiskModel())
        app.state.resources = resources
        try:
            yield
        finally:
            await close_resources(resources)

    docs = settings.docs_enabled  # off in production unless API_DOCS_ENABLED (docs/SECURITY.md §4)
    app = FastAPI(
        title="Auto-Insurance-System API",
        version="1.0.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url="/docs" if docs else None,
        redoc_url="/redoc" if docs else None,
        openapi_url="/openapi.json" if docs else None,
    )
    app.state.settings = settings
    app.state.tokens = TokenCache()
    for router in ROUTERS:
        app.include_router(router)
    install_console(app, settings)  # the web console at / (docs/CONSOLE.md): static files, same ingress
    _install_error_handlers(app)
    # Innermost first: login shedding sees bodies the guard has bounded; both sit inside the platform middleware
    # (added last, outermost), so their refusals carry request ids and are measured.
    app.add_middleware(ShedLoginsWhenFull, path=auth.LOGIN_PATH)
    app.add_middleware(RequestGuard, rule_for=lambda method, path: body_rule(settings, method, path))
    install_observability(app)
    # outermost: a request forwarded to a rollout's canary is measured there, once, not also on this side
    app.add_middleware(CanaryRouter, settings=settings,
                       redis=lambda: getattr(getattr(app.state, "resources", None), "redis", None))
    return app


async def open_resources(settings: Settings, risk_model: RiskModel) -> ApiResources:
    """Pool, Redis, the multi-level cache with its invalidation listener, the use-case handlers over their
    adapters, and a bounded warm-up in the background."""
    pool = await create_pool(settings, application_name=API_POOL, min_size=min(settings.db_pool_size, 2))
    redis = create_redis(settings, wait_for_connection=True)
    # Hit/miss counters reach Prometheus in batches (deployments.api.observability), not per lookup.
    cache = MultiLevelCache(redis, l1_ttl_s=settings.l1_cache_ttl_s, l1_maxsize=settings.l1_cache_maxsize)
    read_models = PostgresDriverReadModels(pool, settings)
    terms = QueryTerms(ttl_default_s=settings.cache_ttl_default, ttl_score_s=settings.cache_ttl_risk_score,
                       window_days=settings.scoring_window_days)
    privacy_store = PostgresPrivacyStore(pool, settings)
    queries = DriverQueries(read_models, cache, risk_model, terms, privacy_store)
    privacy_consent = PrivacyConsent(privacy_store, cache, RedisPrivacyNotifier(redis), SystemClock())
    sessions = Sessions(PostgresTokenVersions(pool, settings), RedisSessionNotifier(redis),
                        ttl_s=settings.session_check_ttl_s)
    admin = AdminWrites(PostgresAdminStore(pool, settings), cache, hash_password, sessions)
    login = LoginPorts(
        throttle=RedisLoginThrottle(redis, throttle_rules(settings)),
        credentials=PostgresCredentials(pool, settings),
        passwords=PasswordVerifier(settings.login_verify_concurrency, settings.login_verify_queue,
                                   settings.login_verify_wait_s, settings.login_verify_duty),
        clock=SystemClock(),
    )
    devices = Devices(PostgresDeviceStore(pool, settings), cache, SystemClock(),
                      DeviceTerms(cache_ttl_s=settings.cache_ttl_default,
                                  last_seen_interval_s=settings.device_last_seen_interval_s))
    rules = rules_in_force(settings)
    disputes = Disputes(PostgresDisputeStore(pool), risk_model, cache, SystemClock(),
                        DisputeTerms(window_days=float(settings.scoring_window_days), rules_version=rules.version,
                                     rules=rules.pricing))
    resources = ApiResources(settings=settings, pool=pool, redis=redis, cache=cache, risk_model=risk_model,
                             queries=queries, disputes=disputes, admin=admin, login=login, devices=devices,
                             sessions=sessions, privacy=privacy_consent,
                             claims=Claims(PostgresClaimStore(pool, settings), SystemClock(), privacy_store),
                             metrics_cache=Recent(settings.metrics_cache_s),
                             readiness_cache=Recent(settings.readiness_cache_s))
    resources.cache_listener = asyncio.create_task(cache.listen(others=(sessions,)), name="cache-invalidation")
    resources.cache_warming = asyncio.create_task(
        warm_cache(queries, read_models, settings.cache_warm_budget_s), name="cache-warming")
    return resources


def throttle_rules(settings: Settings) -> ThrottleRules:
    return ThrottleRules(free_failures=settings.login_max_failures, max_delay_ms=settings.login_delay_max_s * 1000,
                         window_ms=settings.login_failure_window_s * 1000)


async def close_resources(resources: ApiResources) -> None:
    for task in (resources.cache_warming, resources.cache_listener):
        if task is not None:
            task.cancel()
            with suppress(asyncio.CancelledError, Exception):
                await task
    if resources.ingest is not None:
        await resources.ingest.close()
    if resources.metrics_client is not None:
        await resources.metrics_client.aclose()
    if isinstance(resources.login.passwords, PasswordVerifier):
        resources.login.passwords.close()
    await resources.redis.aclose()
    await resources.pool.close()


# -- errors -------------------------------------------------------------------------------------------


def _install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Conflict, _conflict)
    app.add_exception_handler(DisputeConflict, _conflict)
    app.add_exception_handler(DisputeRefused, _missing_reference)  # a 422 whose message says why
    app.add_exception_handler(DisputeNotFound, _not_found)
    app.add_exception_handler(MissingReference, _missing_reference)
    app.add_exception_handler(RiskModelUnavailable, _model_unavailable)
    for error_type in (*REDIS_ERRORS, asyncpg.PostgresConnectionError, asyncpg.InterfaceError,
                       asyncpg.CannotConnectNowError, asyncpg.TooManyConnectionsError, TimeoutError):
        app.add_exception_handler(error_type, _service_unavailable)
    app.add_exception_handler(asyncpg.QueryCanceledError, _service_unavailable)
    # Safety net behind the schemas' bounds: a value the database refuses is the caller's error.
    app.add_exception_handler(asyncpg.DataError, _rejected_by_database)
    app.add_exception_handler(asyncpg.IntegrityConstraintViolationError, _rejected_by_database)
    app.add_exception_handler(Exception, _unexpected)


def readable_errors(errors: Sequence[dict]) -> list[dict]:
    """FastAPI's validation errors (loc, msg, type: the documented shape) plus `field`, e.g. `page_size`."""
    out = []
    for error in errors:
        loc = tuple(error.get("loc", ()))
        named = [str(part) for part in loc if part != "body" and not isinstance(part, int)]
        message = str(error.get("msg", "invalid value")).removeprefix("Value error, ")
        out.append({"loc": list(loc), "msg": message, "type": str(error.get("type", "value_error")),
                    "field": ".".join(named) or (str(loc[0]) if loc else "request")})
    return out


async def _validation_error(_request: Request, error: Exception) -> JSONResponse:
    details = readable_errors(error.errors()) if isinstance(error, RequestValidationError) else []
    summary = "; ".join(f"{d['field']}: {d['msg']}" for d in details[:5]) or "invalid request"
    return JSONResponse({"detail": details, "message": summary}, status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)


async def _conflict(_request: Request, error: Exception) -> JSONResponse:
    return JSONResponse({"detail": str(error)}, status_code=status.HTTP_409_CONFLICT)


async def _not_found(_request: Request, error: Exception) -> JSONResponse:
    return JSONResponse({"detail": str(error)}, status_code=status.HTTP_404_NOT_FOUND)


async def _missing_reference(_request: Request, error: Exception) -> JSONResponse:
    return _unprocessable(str(error))


async def _rejected_by_database(_request: Request, error: Exception) -> JSONResponse:
    reason = str(error).splitlines()[0][:200] if str(error) else type(error).__name__
    return _unprocessable(f"the database refused the value: {reason}")


def _unprocessable(message: str) -> JSONResponse:
    """A 422 in the documented validation shape (a list of {loc, msg, type}) plus a one-line `message`."""
    detail = [{"loc": ["body"], "msg": message, "type": "value_error", "field": "body"}]
    return JSONResponse({"detail": detail, "message": message}, status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)


async def _model_unavailable(_request: Request, error: Exception) -> JSONResponse:
    return JSONResponse({"detail": str(error)}, status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
                        headers={"Retry-After": "5"})


async def _service_unavailable(request: Request, error: Exception) -> JSONResponse:
    _log.warning("backing_service_unavailable", path=request.url.path, error=repr(error)[:300])
    return JSONResponse(
        {"detail": "a backing service (PostgreSQL or Redis) is unavailable or timed out; retry shortly"},
        status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
        headers={"Retry-After": "5"},
    )


async def _unexpected(request: Request, error: Exception) -> JSONResponse:
    _log.error("unhandled_error", path=request.url.path, error=repr(error)[:500], exc_info=error)
    return JSONResponse({"detail": "internal error; it has been logged"}, status_code=500)
