"""Redis client factory: one pool per process, bounded, with timeouts and health checks."""

from __future__ import annotations

from urllib.parse import urlsplit

import redis.asyncio as aioredis

from config.settings import Settings


def tls_options(settings: Settings) -> dict[str, object]:
    """rediss://: verify the server against REDIS_SSL_CA_CERTS (or the system's CAs) and its name. redis-py
    takes these only for rediss:// (its plain connection refuses ssl_* arguments), so nothing for redis://."""
    if urlsplit(settings.redis_url).scheme != "rediss":
        return {}
    options: dict[str, object] = {"ssl_cert_reqs": "required", "ssl_check_hostname": True}
    if settings.redis_ssl_ca_certs is not None:
        options["ssl_ca_certs"] = str(settings.redis_ssl_ca_certs)
    return options


def create_redis(settings: Settings, *, wait_for_connection: bool = False, **overrides: object) -> aioredis.Redis:
    """Lazy: no connection is made until the first command (cheap, rerunnable constructors).
    `wait_for_connection`: a burst beyond `redis_max_connections` waits for a free connection (up to
    `redis_socket_timeout_s`) instead of failing — the API's choice (100 logins at once must all pass)."""
    options: dict[str, object] = {
        "max_connections": settings.redis_max_connections,
        "socket_timeout": settings.redis_socket_timeout_s,
        "socket_connect_timeout": settings.redis_socket_timeout_s,
        "health_check_interval": 30,
        "retry_on_timeout": True,
        "decode_responses": False,
    }
    options.update(tls_options(settings))
    options.update(overrides)
    if wait_for_connection:  # redis-py's from_url always builds a plain ConnectionPool
        pool = aioredis.BlockingConnectionPool.from_url(
            settings.redis_url, timeout=settings.redis_socket_timeout_s, **options
        )
        return aioredis.Redis.from_pool(pool)
    return aioredis.from_url(settings.redis_url, **options)
