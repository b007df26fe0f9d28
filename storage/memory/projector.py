"""InMemoryProjector: the Projector port in dicts, for unit tests of the ingest handlers (STYLE.md habit 6).

It applies the same plan as the Redis adapter (`plan_projection`, pure) with the Lua script's rules: a trip end
bumps the driver's cache generation, the recent messages are a set ranked by (seq, message) trimmed to the
newest `recent_per_driver`, and every message is published on the driver's channel, then the fleet chunks and
one invalidation. The contract suite (tests/contracts/projector_contract.py) holds it to the Redis adapter's
behaviour.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from domain.batches import ShardOutput
from storage.redis.keys import FLEET_CHANNEL, INVALIDATE_CHANNEL, driver_channel
from storage.redis.projections import ProjectionResult, message_order, plan_projection

_ORDER = msgspec.json.Decoder(dict)


class InMemoryProjector:
    def __init__(self, *, recent_per_driver: int = 200) -> None:
        if recent_per_driver < 1:
            raise ValueError("recent_per_driver must be ≥ 1")
        self.recent_per_driver = recent_per_driver
        self.generations: dict[str, int] = {}  # generation_key(id)
        self.recent_sets: dict[str, dict[bytes, int]] = {}  # driver -> message -> seq (the zset)
        self.published: list[tuple[str, bytes]] = []  # (channel, payload) in publish order
        self.batches = 0

    async def publish_batch(self, outputs: Sequence[ShardOutput]) -> ProjectionResult:
        plan = plan_projection(outputs)
        self.batches += 1
        for update in plan.drivers:
            driver = update.driver_id
            if update.cache_stale:
                self.generations[driver] = self.generations.get(driver, 0) + 1
            if update.messages:
                recent = self.recent_sets.setdefault(driver, {})
                recent.update({message: seq for seq, message in update.messages})
                kept = sorted(recent.items(), key=lambda item: (item[1], item[0]))[-self.recent_per_driver :]
                self.recent_sets[driver] = dict(kept)
                self.published += [(driver_channel(driver), message) for _, message in update.messages]
        self.published += [(FLEET_CHANNEL, payload) for payload in plan.fleet_payloads]
        if plan.invalidation is not None:
            self.published.append((INVALIDATE_CHANNEL, plan.invalidation))
        return ProjectionResult(
            drivers=len(plan.drivers),
            messages=plan.message_count,
            trips_ended=plan.stale_drivers,
            fleet_publishes=len(plan.fleet_payloads),
        )

    # -- what readers see (the same questions storage.redis.projections.read_recent answers) -------------

    def recent(self, driver_id: str, since_seq: int = -1) -> list[bytes]:
        """Messages with seq > since_seq still held, in `message_order`."""
        members = [m for m, seq in self.recent_sets.get(driver_id, {}).items() if seq > since_seq]
        keyed = [(message_order(k["seq"], k["type"], k.get("stream_version", 0)), m) for m in members
                 for k in (_ORDER.decode(m),)]  # fmt: skip
        keyed.sort(key=lambda item: item[0])
        return [m for _, m in keyed]

    def generation(self, driver_id: str) -> int:
        return self.generations.get(driver_id, 0)

    def messages_on(self, channel: str) -> list[bytes]:
        return [payload for name, payload in self.published if name == channel]

    def invalidated_drivers(self) -> list[str]:
        """Driver ids of every `cache:invalidate` message, in order."""
        return [d for payload in self.messages_on(INVALIDATE_CHANNEL) for d in _ORDER.decode(payload)["driver_ids"]]
