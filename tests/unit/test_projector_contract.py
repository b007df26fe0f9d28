"""The projector contract (tests/contracts/projector_contract.py) on the InMemoryProjector fake."""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable

import pytest

from storage.memory.projector import InMemoryProjector
from tests.contracts.projector_contract import *  # noqa: F403 - the contract's tests


class MemoryProjectorBackend:
    def __init__(self) -> None:
        self._made: list[InMemoryProjector] = []
        self._ids = itertools.count()
        self._shared: InMemoryProjector | None = None

    def projector(self, recent_per_driver: int = 200) -> InMemoryProjector:
        # One state, as in Redis: every projector a test makes writes the same "server".
        if self._shared is None:
            self._shared = InMemoryProjector(recent_per_driver=recent_per_driver)
        self._shared.recent_per_driver = recent_per_driver
        return self._shared

    def drivers(self, n: int = 1) -> list[str]:
        return [f"projtest-{next(self._ids)}" for _ in range(n)]

    async def recent(self, driver_id: str, since_seq: int = -1) -> list[bytes]:
        return self.projector_state().recent(driver_id, since_seq)

    async def generation(self, driver_id: str) -> int:
        return self.projector_state().generation(driver_id)

    async def capture(self, channels: list[str], action: Callable[[], Awaitable]) -> dict[str, list[bytes]]:
        state = self.projector_state()
        before = len(state.published)
        await action()
        return {c: [p for name, p in state.published[before:] if name == c] for c in channels}

    def projector_state(self) -> InMemoryProjector:
        return self.projector(self._shared.recent_per_driver if self._shared else 200)


@pytest.fixture
def backend() -> MemoryProjectorBackend:
    return MemoryProjectorBackend()
