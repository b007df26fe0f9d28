"""Links to PostgreSQL, Redis and Kafka: which are encrypted, and the DSN every PostgreSQL client connects with.

Pure functions of setting values (no I/O). `plaintext_link` is the rule of docs/SECURITY.md §7: outside
development on loopback a link must be TLS (Kafka SSL/SASL_SSL, PostgreSQL sslmode require/verify-*,
rediss://) unless ALLOW_PLAINTEXT_LINKS=true; `postgres_dsn` is the one place that adds DATABASE_SSLMODE and
DATABASE_SSLROOTCERT to DATABASE_URL (asyncpg reads both from the query string).
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

if TYPE_CHECKING:
    from config.settings import Settings

KAFKA_TLS_PROTOCOLS = frozenset({"SSL", "SASL_SSL"})
KAFKA_SASL_PROTOCOLS = frozenset({"SASL_PLAINTEXT", "SASL_SSL"})
# libpq/asyncpg: "prefer" and "allow" fall back to plaintext when the server (or a man in the middle) says no.
PG_TLS_MODES = frozenset({"require", "verify-ca", "verify-full"})
PG_SSLMODES = frozenset({"disable", "allow", "prefer"}) | PG_TLS_MODES


def postgres_dsn(url: str, sslmode: str | None, sslrootcert: str | None) -> str:
    """`url` with `sslmode` / `sslrootcert` set in its query (a setting replaces the URL's own value)."""
    extra = {key: value for key, value in (("sslmode", sslmode), ("sslrootcert", sslrootcert)) if value}
    if not extra:
        return url
    parts = urlsplit(url)
    query = [(key, value) for key, value in parse_qsl(parts.query, keep_blank_values=True) if key not in extra]
    return urlunsplit(parts._replace(query=urlencode([*query, *extra.items()])))


def postgres_sslmode(dsn: str) -> str | None:
    """The sslmode a DSN asks for, or None (asyncpg then uses PGSSLMODE or "prefer")."""
    return dict(parse_qsl(urlsplit(dsn).query)).get("sslmode")


def plaintext_link(settings: Settings) -> tuple[str, str] | None:
    """(key, what is plaintext) for the first link that is not TLS, or None when every one is.
    A Unix socket (`unix://` Redis) is no network link and passes."""
    if settings.kafka_security_protocol not in KAFKA_TLS_PROTOCOLS:
        return "KAFKA_SECURITY_PROTOCOL", f"Kafka over {settings.kafka_security_protocol}; use SSL or SASL_SSL"
    if postgres_sslmode(settings.database_dsn) not in PG_TLS_MODES:
        key = "DATABASE_SSLMODE" if settings.database_sslmode else "DATABASE_URL"
        return key, ("PostgreSQL without sslmode require, verify-ca or verify-full "
                     "(DATABASE_SSLMODE or ?sslmode= in DATABASE_URL)")
    if urlsplit(settings.redis_url).scheme == "redis":
        return "REDIS_URL", "Redis over redis://; use rediss://"
    return None


def missing_sasl_setting(settings: Settings) -> str | None:
    """The first SASL setting a SASL_* protocol lacks (key), or None."""
    if settings.kafka_security_protocol not in KAFKA_SASL_PROTOCOLS:
        return None
    for key, value in (("KAFKA_SASL_MECHANISM", settings.kafka_sasl_mechanism),
                       ("KAFKA_SASL_USERNAME", settings.kafka_sasl_username),
                       ("KAFKA_SASL_PASSWORD", settings.kafka_sasl_password)):
        if not value or (hasattr(value, "get_secret_value") and not value.get_secret_value()):
            return key
    return None
