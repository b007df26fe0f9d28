"""`POST /api/v1/auth/login`: username + password → a bearer JWT. Failed attempts are rate limited per
username and client (Redis counters with a window, storage.redis.keys.login_failure_keys); successful logins
never are."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request, status

from deployments.api import auth
from deployments.api.routers.common import ResourcesDep
from deployments.api.schemas import ErrorOut, LoginRequest, TokenResponse
from storage.postgres import users
from storage.postgres.pool import acquire
from storage.redis.keys import login_failure_keys

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])

BAD_CREDENTIALS = "invalid username or password"


@router.post(
    "/login",
    response_model=TokenResponse,
    responses={
        400: {"model": ErrorOut, "description": "a request body that is not readable JSON"},
        401: {"model": ErrorOut, "description": BAD_CREDENTIALS},
        403: {"model": ErrorOut, "description": "account disabled"},
        429: {"model": ErrorOut, "description": "too many failed logins; see Retry-After"},
    },
)
async def login(body: LoginRequest, request: Request, resources: ResourcesDep) -> TokenResponse:
    settings = resources.settings
    client = request.client.host if request.client else "unknown"
    keys = login_failure_keys(body.username, client)
    await _refuse_if_limited(resources, keys)
    async with acquire(resources.pool, settings) as conn:
        row = await users.login_row(conn, body.username)
    if not await auth.verify_password(row["password_hash"] if row else None, body.password):
        await _count_failure(resources, keys)
        raise auth.AuthError(BAD_CREDENTIALS)
    if not row["is_active"]:
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="account disabled: ask an administrator")
    async with acquire(resources.pool, settings) as conn:
        await users.record_login(conn, row["user_id"])
    token = auth.issue_token(settings, user_id=str(row["user_id"]), role=row["role"], driver_id=row["driver_id"])
    return TokenResponse(access_token=token, expires_in_s=settings.jwt_expire_minutes * 60)


async def _refuse_if_limited(resources: ResourcesDep, keys: tuple[str, str]) -> None:
    pipe = resources.redis.pipeline(transaction=False)
    for key in keys:
        pipe.get(key)
        pipe.ttl(key)
    counts_ttls = await pipe.execute()
    limits = auth.failure_limits(resources.settings.login_max_failures)
    waits = [
        max(int(counts_ttls[2 * i + 1]), 1)
        for i, limit in enumerate(limits)
        if counts_ttls[2 * i] is not None and int(counts_ttls[2 * i]) >= limit
    ]
    if waits:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            detail=f"too many failed logins; try again in {max(waits)} s",
            headers={"Retry-After": str(max(waits))},
        )


async def _count_failure(resources: ResourcesDep, keys: tuple[str, str]) -> None:
    pipe = resources.redis.pipeline(transaction=False)
    for key in keys:  # the window starts at the first failure; INCR keeps the TTL
        pipe.set(key, 0, ex=resources.settings.login_failure_window_s, nx=True)
        pipe.incr(key)
    await pipe.execute()
