"""The live feeds' pure guards: the bearer token offered as a subprotocol, and the socket caps."""

from __future__ import annotations

import pytest

from deployments.ws_protocol import PROTOCOL, bearer_from_subprotocols, client_subprotocols
from domain.socket_caps import SocketCaps

pytestmark = pytest.mark.unit


def test_the_token_is_read_only_next_to_the_protocol_and_only_once():
    assert bearer_from_subprotocols(client_subprotocols("a.b.c")) == "a.b.c"
    assert bearer_from_subprotocols(["bearer.a.b.c"]) is None  # without autoins.v1
    assert bearer_from_subprotocols([PROTOCOL]) is None
    assert bearer_from_subprotocols([PROTOCOL, "bearer."]) is None
    assert bearer_from_subprotocols([PROTOCOL, "bearer.x", "bearer.y"]) is None  # ambiguous


def test_caps_count_per_user_and_per_address_and_free_on_release():
    caps = SocketCaps(per_user=2, per_address=3)
    assert caps.admit("u1", "a") is None and caps.admit("u1", "a") is None
    assert "user" in caps.admit("u1", "b")
    assert caps.admit("u2", "a") is None
    assert "address" in caps.admit("u3", "a")
    caps.release("u1", "a")
    assert caps.admit("u3", "a") is None and caps.admit("u1", "b") is None
    for user, address in (("u1", "a"), ("u1", "b"), ("u2", "a"), ("u3", "a")):
        caps.release(user, address)
    assert not caps.by_user and not caps.by_address
