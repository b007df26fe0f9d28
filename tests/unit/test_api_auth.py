"""Tokens, principals, passwords and login rate-limit keys (deployments.api.auth), without any service."""

from __future__ import annotations

import asyncio
import time

import jwt
import pytest

from config.settings import Settings
from deployments.api.auth import (
    AuthError,
    Principal,
    decode_token,
    hash_password,
    issue_token,
    sign_claims,
)

SETTINGS = Settings(jwt_secret_key="unit-test-secret-" + "x" * 64, jwt_expire_minutes=30)
SECRET = SETTINGS.jwt_secret_key.get_secret_value()


def test_a_token_carries_sub_role_driver_version_iat_and_exp_and_decodes_to_its_principal():
    token = issue_token(SETTINGS, user_id="u-1", role="driver", driver_id="driver0007", now_s=1_800_000_000)
    claims = jwt.decode(token, SECRET, algorithms=["HS256"], audience="autoins-api",
                        options={"verify_exp": False, "verify_iat": False})
    assert claims == {"iss": "autoins", "aud": "autoins-api", "sub": "u-1", "role": "driver",
                      "driver_id": "driver0007", "ver": 0, "iat": 1_800_000_000, "exp": 1_800_000_000 + 30 * 60}
    fresh = issue_token(SETTINGS, user_id="u-1", role="driver", driver_id="driver0007")
    assert decode_token(SETTINGS, fresh) == Principal(user_id="u-1", role="driver", driver_id="driver0007")


def test_an_expired_token_says_so():
    token = issue_token(SETTINGS, user_id="u", role="admin", driver_id=None, now_s=time.time() - 31 * 60)
    with pytest.raises(AuthError, match="token expired"):
        decode_token(SETTINGS, token)


@pytest.mark.parametrize(
    ("claims", "message"),
    [
        ({"sub": "u", "role": "root", "driver_id": None, "ver": 0}, "unknown role"),
        ({"sub": "u", "role": "driver", "driver_id": None, "ver": 0}, "must name its driver"),
        ({"sub": 7, "role": "admin", "driver_id": None, "ver": 0}, "not a valid JWT|malformed"),
        ({"role": "admin", "driver_id": None, "ver": 0}, "missing claim 'sub'"),
        ({"sub": "u", "role": "admin", "driver_id": None}, "missing claim 'ver'"),  # minted before revocation
        ({"sub": "u", "role": "admin", "driver_id": None, "ver": "0"}, "malformed"),
        ({"sub": "u", "role": "admin", "driver_id": None, "ver": True}, "malformed"),
    ],
)
def test_well_signed_tokens_with_bad_claims_are_rejected(claims, message):
    now = int(time.time())
    token = sign_claims(SETTINGS, {**claims, "iat": now, "exp": now + 60})
    with pytest.raises(AuthError, match=message) as raised:
        decode_token(SETTINGS, token)
    assert raised.value.status_code == 401 and raised.value.headers == {"WWW-Authenticate": "Bearer"}


def test_only_the_configured_algorithm_is_accepted():
    now = int(time.time())
    claims = {"sub": "u", "role": "admin", "driver_id": None, "iat": now, "exp": now + 60}
    with pytest.raises(AuthError, match="only HS256"):
        decode_token(SETTINGS, jwt.encode(claims, SECRET, algorithm="HS384"))
    unsigned = jwt.encode(claims, None, algorithm="none")
    with pytest.raises(AuthError):
        decode_token(SETTINGS, unsigned)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"aud": "another-service"}, r"not issued for this API \(aud\)"),
        ({"iss": "someone-else"}, r"unknown issuer \(iss\)"),
        ({"aud": None}, "missing claim 'aud'"),
        ({"iss": None}, "missing claim 'iss'"),
    ],
)
def test_a_token_for_another_audience_or_from_another_issuer_is_rejected(change, message):
    now = int(time.time())
    claims = {"iss": "autoins", "aud": "autoins-api", "sub": "u", "role": "admin", "driver_id": None, "ver": 0,
              "iat": now, "exp": now + 60, **change}
    token = jwt.encode({k: v for k, v in claims.items() if v is not None}, SECRET, algorithm="HS256")
    with pytest.raises(AuthError, match=message):
        decode_token(SETTINGS, token)


def test_a_deployment_with_its_own_audience_and_issuer_refuses_the_defaults():
    mine = SETTINGS.with_overrides(jwt_audience="fleet-api", jwt_issuer="fleet-auth")
    token = issue_token(mine, user_id="u", role="admin", driver_id=None)
    assert decode_token(mine, token).user_id == "u"
    with pytest.raises(AuthError, match=r"\((aud|iss)\)"):
        decode_token(SETTINGS, token)


@pytest.mark.parametrize(("algorithm", "kind"), [("RS256", "rsa"), ("ES384", "p384")])
def test_rsa_and_ecdsa_tokens_are_signed_with_the_private_key_and_checked_with_the_public_one(algorithm, kind):
    from tests.unit.test_settings import pem_pair

    private, public = pem_pair(kind)
    settings = Settings(jwt_algorithm=algorithm, jwt_secret_key=private, jwt_public_key=public)
    token = issue_token(settings, user_id="u", role="driver", driver_id="driver0001")
    assert jwt.get_unverified_header(token)["alg"] == algorithm
    assert decode_token(settings, token).driver_id == "driver0001"
    with pytest.raises(AuthError, match="only " + algorithm):  # an HS256 token made with the public key
        decode_token(settings, jwt.encode({"sub": "u"}, "k" * 64, algorithm="HS256"))


def test_a_driver_reads_only_their_own_data_and_an_admin_reads_all():
    driver = Principal(user_id="u", role="driver", driver_id="driver0001")
    admin = Principal(user_id="a", role="admin", driver_id=None)
    assert driver.may_read("driver0001") and not driver.may_read("driver0002")
    assert admin.may_read("driver0002") and admin.is_admin and not driver.is_admin


def test_passwords_are_salted_argon2id_and_verify_off_the_event_loop():
    from deployments.api.passwords import PasswordVerifier

    async def scenario() -> tuple[str, str, bool, bool, bool]:
        first, second = await hash_password("password0001"), await hash_password("password0001")
        verifier = PasswordVerifier(concurrency=1, queue=4, wait_s=5)
        try:
            return (first, second, await verifier.verify(first, "password0001"),
                    await verifier.verify(first, "password0002"), await verifier.verify(None, "password0001"))
        finally:
            verifier.close()

    first, second, right, wrong, unknown = asyncio.run(scenario())
    assert first.startswith("$argon2id$v=19$m=19456,t=2,p=1$") and first != second
    assert (right, wrong, unknown) == (True, False, False)
