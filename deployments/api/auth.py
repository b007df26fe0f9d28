"""Passwords (argon2id), JWTs (PyJWT, HS256 by default) and the FastAPI dependencies that guard routes.

Claims iss, aud, sub (user id), role, driver_id, ver (the user's token version), iat, exp; decoding accepts only
`settings.jwt_algorithm` (HS*, RS* or ES*: config.settings refuses others) and requires every claim with this
deployment's `jwt_issuer` and `jwt_audience`, so `alg: none`, another algorithm, a token minted for another
service, a tampered or expired token are all 401 with `WWW-Authenticate: Bearer`. Hashing runs in a thread
(`asyncio.to_thread`): one verify costs ~10–30 ms of CPU and must not stall the event loop.
A good signature is not enough: `current_principal` also asks the replica's `Sessions` whether `ver` is still the
user's current token version (revocation, docs/SECURITY.md §8).
"""

from __future__ import annotations

import asyncio
import functools
import time
from dataclasses import dataclass
from typing import Annotated

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from config.fail_closed import ASYMMETRIC_JWT_ALGORITHMS
from config.settings import Settings

ROLES = ("driver", "admin")
CLOCK_SKEW_S = 10  # tolerated between the node that issued a token and the one checking it (iat, exp)
# OWASP minimum for argon2id: m = 19 MiB, t = 2, p = 1 (about 15–25 ms per hash on this machine).
HASHER = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)


@functools.cache
def _dummy_hash() -> str:
    """Verified when the username is unknown, so a miss costs as much as a wrong password (no enumeration)."""
    return HASHER.hash("not-a-real-password")


_bearer = HTTPBearer(auto_error=False, description="`Authorization: Bearer <token>` from POST /api/v1/auth/login")


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: `driver_id` is the data a driver may read (None for an admin without a profile)."""

    user_id: str
    role: str
    driver_id: str | None
    token_version: int = 0  # `ver`: the user's token version when the token was minted

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    def may_read(self, driver_id: str) -> bool:
        return self.is_admin or self.driver_id == driver_id


class AuthError(HTTPException):
    """401 with the Bearer challenge (RFC 6750) and a message saying what was wrong."""

    def __init__(self, message: str) -> None:
        super().__init__(status.HTTP_401_UNAUTHORIZED, detail=message, headers={"WWW-Authenticate": "Bearer"})


# -- passwords ----------------------------------------------------------------------------------------


def hash_password_sync(password: str) -> str:
    return HASHER.hash(password)


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(HASHER.hash, password)


def check_password(password_hash: str | None, password: str) -> bool:
    """Blocking (~25 ms of CPU): run it in a thread. None (unknown user) verifies the dummy hash and is False."""
    try:
        return HASHER.verify(password_hash or _dummy_hash(), password) and password_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


# -- tokens -------------------------------------------------------------------------------------------


REQUIRED_CLAIMS = ("iss", "aud", "exp", "iat", "sub", "role", "ver")


def _verification_key(settings: Settings) -> str:
    """HS*: the shared secret; RS*/ES*: the public key (the secret is the private key and only signs)."""
    if settings.jwt_algorithm in ASYMMETRIC_JWT_ALGORITHMS:
        return settings.jwt_public_key or ""
    return settings.jwt_secret_key.get_secret_value()


def sign_claims(settings: Settings, claims: dict) -> str:
    """`claims` signed with this deployment's key and algorithm; `iss` and `aud` are this deployment's unless
    given. The one place tokens are minted (logins, benches, tests)."""
    full = {"iss": settings.jwt_issuer, "aud": settings.jwt_audience, **claims}
    return jwt.encode(full, settings.jwt_secret_key.get_secret_value(), algorithm=settings.jwt_algorithm)


def issue_token(
    settings: Settings, *, user_id: str, role: str, driver_id: str | None, now_s: float | None = None,
    token_version: int = 0,
) -> str:
    issued = int(time.time() if now_s is None else now_s)
    return sign_claims(settings, {"sub": user_id, "role": role, "driver_id": driver_id, "ver": token_version,
                                  "iat": issued, "exp": issued + settings.jwt_expire_minutes * 60})


def decode_token(settings: Settings, token: str) -> Principal:
    """The token's principal, or AuthError naming the problem (expired, bad signature, malformed…)."""
    return decode_with_expiry(settings, token)[0]


def decode_with_expiry(settings: Settings, token: str) -> tuple[Principal, float]:
    """(principal, its `exp` in epoch seconds), or AuthError."""
    try:
        claims = jwt.decode(
            token,
            _verification_key(settings),
            algorithms=[settings.jwt_algorithm],
            audience=settings.jwt_audience,
            issuer=settings.jwt_issuer,
            options={"require": list(REQUIRED_CLAIMS)},
            leeway=CLOCK_SKEW_S,
        )
    except jwt.ExpiredSignatureError:
        raise AuthError("token expired: log in again") from None
    except jwt.MissingRequiredClaimError as error:
        raise AuthError(f"token rejected: missing claim {error.claim!r}") from None
    except jwt.InvalidAudienceError:
        raise AuthError("token rejected: not issued for this API (aud)") from None
    except jwt.InvalidIssuerError:
        raise AuthError("token rejected: unknown issuer (iss)") from None
    except jwt.InvalidAlgorithmError:
        raise AuthError(f"token rejected: only {settings.jwt_algorithm} tokens are accepted") from None
    except jwt.InvalidSignatureError:
        raise AuthError("token rejected: bad signature") from None
    except jwt.PyJWTError:
        raise AuthError("token rejected: not a valid JWT") from None
    role, driver_id, version = claims.get("role"), claims.get("driver_id"), claims.get("ver")
    if (role not in ROLES or not isinstance(claims["sub"], str) or not (driver_id is None or isinstance(driver_id, str))
            or not isinstance(version, int) or isinstance(version, bool)):
        raise AuthError("token rejected: unknown role or malformed claims")
    if role == "driver" and not driver_id:
        raise AuthError("token rejected: a driver token must name its driver")
    return Principal(user_id=claims["sub"], role=role, driver_id=driver_id, token_version=version), float(claims["exp"])


class TokenCache:
    """Principals of tokens this replica has verified, until their `exp` (+ skew): the same client sends the same
    token with every request, and a signature check + claims parse per request was the largest cost of a cached
    GET. Keyed by the whole token (signature included), so a tampered token never matches; bounded (cleared
    when full). Revocation is checked apart, on every request (`current_principal`)."""

    def __init__(self, maxsize: int = 10_000) -> None:
        self._maxsize = maxsize
        self._entries: dict[str, tuple[Principal, float]] = {}

    def principal(self, settings: Settings, token: str, now_s: float | None = None) -> Principal:
        now_s = time.time() if now_s is None else now_s
        hit = self._entries.get(token)
        if hit is not None and now_s <= hit[1]:
            return hit[0]
        principal, expires_s = decode_with_expiry(settings, token)
        if len(self._entries) >= self._maxsize:
            self._entries.clear()
        self._entries[token] = (principal, expires_s + CLOCK_SKEW_S)
        return principal


# -- FastAPI dependencies -----------------------------------------------------------------------------
# `async def` on purpose: FastAPI runs a plain `def` dependency in a worker thread, a thread hop per
# dependency per request (py-spy under load: 14 % of a replica's samples, plus thread starts).


async def current_principal(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Principal:
    """The caller, from `Authorization: Bearer <jwt>`; 401 when missing, invalid or revoked."""
    if credentials is None:
        header = request.headers.get("authorization")
        raise AuthError("missing bearer token" if not header else "Authorization header must be 'Bearer <token>'")
    principal = request.app.state.tokens.principal(request.app.state.settings, credentials.credentials)
    revoked = await request.app.state.resources.sessions.revocation(principal.user_id, principal.token_version)
    if revoked is not None:
        raise AuthError(revoked)
    return principal


async def require_admin(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
    if not principal.is_admin:
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="admin role required")
    return principal


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]
AdminPrincipal = Annotated[Principal, Depends(require_admin)]
