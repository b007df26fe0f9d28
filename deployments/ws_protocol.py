"""How a WebSocket client authenticates to the live feeds: its bearer token as a subprotocol, read before the
socket is accepted (docs/SECURITY.md §9). Pure; clients (the console, benches, tests) and the server share it.

The client offers two subprotocols: `autoins.v1` and `bearer.<jwt>` (a JWT is base64url and dots, all valid
in a subprotocol token, RFC 6455 §4.1). The server accepts with `autoins.v1` only, so the token is never echoed.
Headers are not in HAProxy's access log, the URL is: no token in the query string.
"""

from __future__ import annotations

from collections.abc import Sequence

PROTOCOL = "autoins.v1"
BEARER_PREFIX = "bearer."


def client_subprotocols(token: str) -> list[str]:
    return [PROTOCOL, f"{BEARER_PREFIX}{token}"]


def bearer_from_subprotocols(offered: Sequence[str]) -> str | None:
    """The token a client offered next to `autoins.v1`; None when either is missing."""
    if PROTOCOL not in offered:
        return None
    tokens = [p[len(BEARER_PREFIX):] for p in offered if p.startswith(BEARER_PREFIX)]
    return tokens[0] if len(tokens) == 1 and tokens[0] else None
