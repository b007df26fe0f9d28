"""The caller's address as the login throttle keys it (docs/SECURITY.md §3).

By default the TCP peer. Serve's HAProxy ingress adds no X-Forwarded-For, so behind it every peer is the proxy
and a (client, username) pair is in effect the username alone. A site with its own proxies in front that APPEND
the client's address to X-Forwarded-For sets `trusted_proxy_hops` to their number: the address that many entries
from the right is the one the outermost trusted proxy saw. Never set it without such a proxy: the header is the
client's own text, and a client that picks its address picks a fresh throttle pair per guess.
"""

from __future__ import annotations

from starlette.types import Scope

UNKNOWN = "unknown"


def client_address(scope: Scope, trusted_proxy_hops: int) -> str:
    peer = scope.get("client")
    address = str(peer[0]) if peer else UNKNOWN
    if trusted_proxy_hops <= 0:
        return address
    forwarded = [v.decode("latin-1") for k, v in scope.get("headers", ()) if k == b"x-forwarded-for"]
    hops = [part.strip() for value in forwarded for part in value.split(",") if part.strip()]
    if len(hops) < trusted_proxy_hops:
        return address  # fewer entries than trusted proxies: the request did not come through them all
    return hops[-trusted_proxy_hops][:64]
