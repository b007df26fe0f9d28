"""Waiting out an outage: which errors mean "the service is away, try again" and a capped backoff.

The pipeline never drops a batch because PostgreSQL or Redis is briefly gone: the persistence actor
retries the whole (idempotent) step, the consumer waits on it, and the backlog shows up as Kafka lag.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

import asyncpg
import redis.exceptions

T = TypeVar("T")

TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    OSError,  # refused, reset, unreachable (ConnectionError is a subclass)
    asyncio.TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,  # connection closed underneath the pool
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.AdminShutdownError,  # pg_terminate_backend, server shutting down
    asyncpg.CrashShutdownError,
    asyncpg.QueryCanceledError,  # statement_timeout while the server is struggling
    # A pooled connection whose backend was terminated mid-operation can be left in a protocol state that
    # refuses the next operation ("cannot switch to state …; another operation is in progress"): retry it
    # on a fresh connection (ActorContext expires the pool's connections on an asyncpg retry).
    asyncpg.InternalClientError,
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    redis.exceptions.BusyLoadingError,
)


def is_transient(error: BaseException) -> bool:
    return isinstance(error, TRANSIENT_ERRORS)


async def retry_transient(
    operation: Callable[[], Awaitable[T]],
    *,
    what: str,
    on_retry: Callable[[str, BaseException, int, float], None] | None = None,
    max_backoff_s: float = 5.0,
    first_backoff_s: float = 0.05,
    give_up_after_s: float | None = None,
) -> T:
    """Run `operation` until it succeeds; transient errors wait (capped exponential backoff with jitter),
    anything else propagates at once. `give_up_after_s=None` waits as long as the outage lasts."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    attempt = 0
    backoff = first_backoff_s
    while True:
        try:
            return await operation()
        except Exception as error:
            if not is_transient(error):
                raise
            attempt += 1
            if give_up_after_s is not None and loop.time() - started >= give_up_after_s:
                raise
            delay = min(max_backoff_s, backoff) * (0.5 + random.random() / 2)
            if on_retry is not None:
                on_retry(what, error, attempt, delay)
            await asyncio.sleep(delay)
            backoff = min(max_backoff_s, backoff * 2)
