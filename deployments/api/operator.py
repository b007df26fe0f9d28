"""Who may see the operator surfaces (docs/SECURITY.md §4): `/metrics` and the details of `/health/ready`.

The operator token (`operator_token`, ≥ 32 characters outside local development) is sent as
`Authorization: Bearer <token>` and compared in constant time. Readiness details are also shown to an admin's
JWT. Development bound to loopback without a token configured keeps both open (a laptop's Prometheus and
`curl` just work); everywhere else, without a token configured, `/metrics` is closed (403) and readiness answers
its status only.
"""

from __future__ import annotations

import hmac

from fastapi import HTTPException, Request, status

from config.settings import Settings
from deployments.api.auth import AuthError

_CLOSED = "/metrics is closed: set OPERATOR_TOKEN and scrape with 'Authorization: Bearer <token>'"


def bearer_token(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def is_operator(settings: Settings, token: str | None) -> bool:
    expected = settings.operator_token
    if expected is None or token is None:
        return False
    return hmac.compare_digest(token.encode(), expected.get_secret_value().encode())


def open_without_token(settings: Settings) -> bool:
    return settings.operator_token is None and settings.is_local_development


async def require_operator(request: Request) -> None:
    """FastAPI dependency of `/metrics`: the operator token, or local development without one."""
    settings: Settings = request.app.state.settings
    if is_operator(settings, bearer_token(request)) or open_without_token(settings):
        return
    if settings.operator_token is None:
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail=_CLOSED)
    raise AuthError("operator token required: 'Authorization: Bearer <OPERATOR_TOKEN>'")


def sees_details(request: Request) -> bool:
    """Readiness details: the operator token, an admin's valid JWT, or local development without a token.
    Anything else (no header, a driver, a bad token) gets the public status: a probe never gets a 401."""
    settings: Settings = request.app.state.settings
    token = bearer_token(request)
    if is_operator(settings, token) or open_without_token(settings):
        return True
    if token is None:
        return False
    try:
        return request.app.state.tokens.principal(settings, token).is_admin
    except AuthError:
        return False
