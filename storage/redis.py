"""Redis client factory: one pool per process, bounded, with timeouts and health checks."""

from __future__ import annotations

import redis.asyncio as aioredis

from autoins.settings import Settings


def create_redis(settings: Settings, **overrides: object) -> aioredis.Redis:
    """Lazy: no connection is made until the first command (cheap, rerunnable constructors)."""
    options: dict[str, object] = {
        "max_connections": settings.redis_max_connections,
        "socket_timeout": settings.redis_socket_timeout_s,
        "socket_connect_timeout": settings.redis_socket_timeout_s,
        "health_check_interval": 30,
        "retry_on_timeout": True,
        "decode_responses": False,
    }
    options.update(overrides)
    return aioredis.from_url(settings.redis_url, **options)
