"""`POST /api/v1/auth/login`: username + password → a bearer JWT. Decode → `usecases.login.log_in` → token.
`POST /api/v1/auth/logout`: revoke the caller's tokens (`usecases.sessions.Sessions.revoke`).

The handler throttles per (client address, username) with progressive delays and checks passwords within the
replica's verification cap (docs/SECURITY.md §3); this adapter maps its refusals to 429 (with Retry-After),
401 and 403."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request, Response, status

from deployments.api import auth
from deployments.api.client_address import client_address
from deployments.api.routers.common import ResourcesDep
from deployments.api.schemas import ErrorOut, LoginRequest, TokenResponse
from usecases.login import AccountDisabled, BadCredentials, LoginAttempt, TooManyAttempts, log_in

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])

BAD_CREDENTIALS = "invalid username or password"
LOGIN_PATH = "/api/v1/auth/login"


@router.post(
    "/login",
    response_model=TokenResponse,
    responses={
        400: {"model": ErrorOut, "description": "a request body that is not plain JSON"},
        401: {"model": ErrorOut, "description": BAD_CREDENTIALS},
        403: {"model": ErrorOut, "description": "account disabled"},
        413: {"model": ErrorOut, "description": "request body larger than 16 KiB"},
        415: {"model": ErrorOut, "description": "a request body that is not application/json"},
        429: {"model": ErrorOut, "description": "this address must wait before trying this username again, or "
                                                "too many logins are being checked; see Retry-After"},
    },
    openapi_extra={"x-access": "throttled per (address, username); password checks capped per replica"},
)
async def login(body: LoginRequest, request: Request, resources: ResourcesDep) -> TokenResponse:
    settings = resources.settings
    attempt = LoginAttempt(body.username, body.password, client_address(request.scope, settings.trusted_proxy_hops))
    try:
        row = await log_in(attempt, resources.login)
    except TooManyAttempts as refused:
        raise HTTPException(status.HTTP_429_TOO_MANY_REQUESTS, detail=str(refused),
                            headers={"Retry-After": str(refused.retry_after_s)}) from None
    except BadCredentials:
        raise auth.AuthError(BAD_CREDENTIALS) from None
    except AccountDisabled as disabled:
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail=str(disabled)) from None
    token = auth.issue_token(settings, user_id=row.user_id, role=row.role, driver_id=row.driver_id,
                             token_version=row.token_version)
    return TokenResponse(access_token=token, expires_in_s=settings.jwt_expire_minutes * 60)


@router.post(
    "/logout",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={401: {"model": ErrorOut, "description": "missing, invalid or already revoked token"}},
    summary="End every session of the caller",
    openapi_extra={"x-access": "its own sessions only"},
)
async def logout(principal: auth.CurrentPrincipal, resources: ResourcesDep) -> Response:
    """Revokes every token of the caller (all devices), and closes their WebSockets, on every replica within the
    bound of docs/SECURITY.md §8: a token version is per user, not per token."""
    await resources.sessions.revoke([principal.user_id])
    return Response(status_code=status.HTTP_204_NO_CONTENT)
