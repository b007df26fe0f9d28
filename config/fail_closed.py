"""Fail closed (docs/SECURITY.md §1, §7): only development bound to loopback may run on the committed JWT secret or
model signing key, short ones, a database/Redis URL without a real password, or plaintext links to PostgreSQL,
Redis and Kafka (the last also with ALLOW_PLAINTEXT_LINKS=true); every other combination refuses to start with one
line naming the key. `refuse_insecure` is what `Settings` runs after validation. Pure: setting values in, a
`SettingsError` out.
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

from config.links import missing_sasl_setting, plaintext_link

if TYPE_CHECKING:
    from config.settings import Settings

# Values that exist only so a development machine works out of the box; production refuses them.
DEV_JWT_SECRET = "dev-secret-key-change-in-production"
DEV_MODEL_SIGNING_KEY = "dev-model-signing-key-change-in-production"
DEV_PASSWORDS = frozenset({"", "postgres", "password", "pass", "dev", "changeme", "secret", "admin", "redis",
                           "root", "test", "default", "autoins"})
MIN_SECRET_CHARS = 32  # also the floor of an operator token
# RFC 7518 §3.2: an HMAC key at least as long as the hash output; PyJWT warns below it.
HMAC_MIN_KEY_CHARS = {"HS256": 32, "HS384": 48, "HS512": 64}
ASYMMETRIC_JWT_ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "ES256", "ES384", "ES512"})
JWT_ALGORITHMS = frozenset(HMAC_MIN_KEY_CHARS) | ASYMMETRIC_JWT_ALGORITHMS

LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


class SettingsError(ValueError):
    """A configuration that must not start; the message is one line that names the key."""


def refuse_insecure(settings: Settings) -> None:
    """Every check runs unless this is development bound to loopback; a few run in every environment."""
    if settings.jwt_algorithm in ASYMMETRIC_JWT_ALGORITHMS:
        check_asymmetric_keys(settings)  # in every environment: a wrong key would fail every login
    if missing := missing_sasl_setting(settings):  # in every environment: the broker would refuse every client
        raise SettingsError(f"{missing}: KAFKA_SECURITY_PROTOCOL={settings.kafka_security_protocol} needs "
                            "KAFKA_SASL_MECHANISM, KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD")
    if settings.is_production and settings.debug:
        raise SettingsError("DEBUG: production refuses debug=true")
    if settings.is_local_development:
        return
    where = settings.environment.value if settings.environment != "development" else (
        f"development bound to {settings.http_host}")
    secret = settings.jwt_secret_key.get_secret_value()
    minimum = HMAC_MIN_KEY_CHARS.get(settings.jwt_algorithm, MIN_SECRET_CHARS)
    if secret == DEV_JWT_SECRET or len(secret) < minimum:
        raise SettingsError(f"JWT_SECRET_KEY: {where} refuses the committed default or a secret under {minimum} "
                            "characters (only development bound to loopback may use them)")
    for key, url in (("DATABASE_URL", settings.database_url), ("REDIS_URL", settings.redis_url)):
        if url_password(url).lower() in DEV_PASSWORDS:
            raise SettingsError(f"{key}: {where} refuses a URL without a password or with a default one")
    token = settings.operator_token.get_secret_value() if settings.operator_token is not None else None
    if token is not None and len(token) < MIN_SECRET_CHARS:
        raise SettingsError(f"OPERATOR_TOKEN: {where} refuses a token under {MIN_SECRET_CHARS} characters")
    signing_key = settings.model_signing_key.get_secret_value()
    if signing_key == DEV_MODEL_SIGNING_KEY or len(signing_key) < MIN_SECRET_CHARS:
        raise SettingsError(f"MODEL_SIGNING_KEY: {where} refuses the committed default or a key under "
                            f"{MIN_SECRET_CHARS} characters")
    if not settings.allow_plaintext_links and (plaintext := plaintext_link(settings)):
        key, what = plaintext
        raise SettingsError(f"{key}: {where} refuses a plaintext link ({what}), "
                            "or set ALLOW_PLAINTEXT_LINKS=true")


def is_loopback(host: str) -> bool:
    """True for the usual names of this host and loopback addresses (127.0.0.0/8, ::1); False for 0.0.0.0, ::
    and any other name (no DNS lookup)."""
    if host.strip().lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def url_password(url: str) -> str:
    """The password of a database/Redis URL, from its userinfo or a `password=` query parameter; "" if none."""
    parts = urlsplit(url)
    if parts.password:
        return parts.password
    return (parse_qs(parts.query).get("password") or [""])[0]


def check_asymmetric_keys(settings: Settings) -> None:
    """RS*/ES*: jwt_secret_key must be a PEM private key and jwt_public_key a PEM public key of that family."""
    from jwt.algorithms import get_default_algorithms  # needs `cryptography` for RS/ES

    algorithm = get_default_algorithms().get(settings.jwt_algorithm)
    if algorithm is None:
        raise SettingsError(f"JWT_ALGORITHM: {settings.jwt_algorithm} needs the cryptography package")
    for key, value, private in (("JWT_SECRET_KEY", settings.jwt_secret_key.get_secret_value(), True),
                                ("JWT_PUBLIC_KEY", settings.jwt_public_key or "", False)):
        try:
            prepared = algorithm.prepare_key(value)
        except Exception:  # InvalidKeyError, ValueError, TypeError: every way a PEM can be wrong
            prepared = None
        if prepared is None or hasattr(prepared, "private_bytes") is not private:
            kind = "private" if private else "public"
            raise SettingsError(f"{key}: {settings.jwt_algorithm} needs a PEM {kind} key of its family")
