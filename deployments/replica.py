"""Which Serve replica is this? Tests and operators use it (hello messages, `X-Served-By`, metrics tags)."""

from __future__ import annotations

import os
import socket
from functools import cache


@cache
def replica_name() -> str:
    """Serve's replica id inside a replica (the `replica` tag of its metrics); host-pid elsewhere (tests)."""
    try:
        from ray import serve

        return serve.get_replica_context().replica_id.unique_id
    except Exception:  # not in a replica (in-process tests, scripts): RayServeException and friends
        return f"{socket.gethostname()}-{os.getpid()}"


def replica_rank() -> int | None:
    """The replica's rank in its deployment (0 .. n-1, reused when a replica is replaced); None outside Serve."""
    try:
        from ray import serve

        rank = serve.get_replica_context().rank
    except Exception:
        return None
    return getattr(rank, "rank", rank)


@cache
def in_replica() -> bool:
    """True inside a Serve replica (Serve's own middleware then echoes `X-Request-ID` on every response)."""
    try:
        from ray import serve

        serve.get_replica_context()
    except Exception:
        return False
    return True
