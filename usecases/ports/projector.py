"""Projector: how a committed batch becomes visible to readers (resumable recent messages, WebSocket channels,
the API's cache generation and L1 invalidation). Eventually consistent; safe to repeat (docs/PROJECTIONS.md).

Adapters: `storage.redis.projections.RedisProjector` and the fake `storage.memory.projector.InMemoryProjector`;
both pass tests/contracts/projector_contract.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from domain.batches import ShardOutput


class Projector(Protocol):
    async def publish_batch(self, outputs: Sequence[ShardOutput]) -> object:
        """Project the shards' outputs of one committed batch; a replay never displaces newer messages. Returns
        adapter-specific counts (the handlers ignore them); transient errors propagate (the caller retries)."""
        ...
