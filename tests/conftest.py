"""Markers by folder, and the wall between unit tests and infrastructure.

Unit tests (tests/unit) cannot start Ray or open a network connection: an autouse fixture makes
`ray.init` and socket connects raise there, so a unit test that needs a service fails loudly.
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

TESTS = Path(__file__).parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        path = Path(str(item.fspath))
        if TESTS / "unit" in path.parents:
            item.add_marker(pytest.mark.unit)
        elif TESTS / "integration" in path.parents or TESTS / "e2e" in path.parents:
            item.add_marker(pytest.mark.integration)


class InfrastructureInUnitTest(RuntimeError):
    """Raised when a unit test reaches for Ray or the network."""


@pytest.fixture(autouse=True)
def _unit_tests_cannot_reach_infrastructure(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch):
    if request.node.get_closest_marker("unit") is None:
        yield
        return

    def refuse(*_args, **_kwargs):
        raise InfrastructureInUnitTest(f"{request.node.nodeid}: unit tests must not start Ray or open sockets")

    real_connect = socket.socket.connect

    def connect_unix_only(sock: socket.socket, address, *rest):
        if sock.family == socket.AF_UNIX:  # asyncio's self-pipe and friends
            return real_connect(sock, address, *rest)
        refuse()

    monkeypatch.setattr(socket.socket, "connect", connect_unix_only)
    monkeypatch.setattr(socket, "create_connection", refuse)
    try:
        import ray
    except ImportError:  # pragma: no cover - ray is a hard dependency
        ray = None
    if ray is not None:
        monkeypatch.setattr(ray, "init", refuse)
    yield
