"""The event store contract (tests/contracts/event_store_contract.py) on the InMemoryEventStore fake."""

from __future__ import annotations

import pytest

from storage.memory.event_store import InMemoryEventStore
from tests.contracts.event_store_contract import *  # noqa: F403 - the contract's tests and the `uid` fixture
from tests.contracts.event_store_contract import MemoryBackend


@pytest.fixture
def backend() -> MemoryBackend:
    return MemoryBackend(InMemoryEventStore())
