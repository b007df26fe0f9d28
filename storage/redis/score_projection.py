"""Redis side of scoring on trip end: the live `risk_scored`/`premium_quoted` messages and the cache bumps,
written after the scores committed to PostgreSQL (docs/SCORING.md). The ScorePublisher port on Redis.

Same conventions as storage/redis/projections.py (docs/PROJECTIONS.md): per driver, `INCR cache:gen:{id}` (the
API's L2 generation), the messages ZADDed into `ws:recent:{id}` scored by `seq` and PUBLISHed on
`ws:driver:{id}`; then `ws:fleet` chunks and one `cache:invalidate` message with the scored drivers. A driver
with several trips in a round gets them in trip order, each trip's messages in message order. Message shape:
`EventMessage` (type, driver_id, seq, ts_ms, event_id, stream_version, payload) with `seq` = the offset of the
reading that ended the trip and `stream_version` the version in the driver's risk stream. Written by the batch
projection's own script (`write_plan`): one pipeline round trip per call; repeating it writes the same bytes
(ZADD of the same member is a no-op; viewers drop repeats).
The latest score itself is not projected: the API reads it from PostgreSQL (and caches it under cache:gen).
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec
import redis.asyncio as aioredis

from domain.scoring import EndedTrip
from storage.redis.projections import (
    DriverUpdate,
    EventMessage,
    ProjectionPlan,
    fleet_payloads,
    invalidation_payload,
    message_order,
    write_plan,
)
from usecases.ports.score_store import ScoredTrip, StoredRiskEvent

_ENCODE = msgspec.json.Encoder().encode


def trip_messages(trip: EndedTrip, events: Sequence[StoredRiskEvent]) -> list[tuple[int, bytes]]:
    """Pure: one scored trip's messages from its stored risk events (one `risk_scored`, at most one
    `premium_quoted`), in message order."""
    if not any(e.event_type == "risk_scored" for e in events):
        raise ValueError(f"no risk_scored event for {trip.driver_id} trip {trip.trip_id}")
    keyed = []
    for e in events:
        message = EventMessage(
            e.event_type,
            trip.driver_id,
            trip.seq,
            e.occurred_at_ms,
            e.event_id,
            e.stream_version,
            msgspec.Raw(e.payload_json),
        )
        keyed.append((message_order(trip.seq, e.event_type, e.stream_version), _ENCODE(message)))
    keyed.sort(key=lambda item: item[0])
    return [(key[0], message) for key, message in keyed]


def plan_scores(scored: Sequence[ScoredTrip]) -> ProjectionPlan:
    """Pure and deterministic: drivers sorted by id, each driver's trips in the order given (the round's trip
    order), `ws:fleet` chunks of all messages in that order, one invalidation. A trip given twice is refused."""
    if len({s.trip.trip_id for s in scored}) != len(scored):
        raise ValueError("plan_scores takes each scored trip once")
    by_driver: dict[str, list[tuple[int, bytes]]] = {}
    for s in scored:
        by_driver.setdefault(s.trip.driver_id, []).extend(trip_messages(s.trip, s.events))
    # A new score makes what the API cached for the driver stale: every scored driver's generation moves.
    drivers = tuple(DriverUpdate(d, True, tuple(by_driver[d])) for d in sorted(by_driver))
    fleet = tuple(fleet_payloads([m for d in drivers for _, m in d.messages]))
    return ProjectionPlan(drivers, fleet, invalidation_payload(d.driver_id for d in drivers) if drivers else None)


async def publish_scores(
    redis: aioredis.Redis, plan: ProjectionPlan, *, recent_per_driver: int = 200, recent_ttl_s: int = 86_400
) -> int:
    """Write a scoring round's plan with the batch projection's script (storage/redis/projections.write_plan):
    the same per-driver steps, with every driver's cache generation moved. Returns the drivers written."""
    return await write_plan(redis, plan, recent_per_driver=recent_per_driver, recent_ttl_s=recent_ttl_s)


class RedisScorePublisher:
    """The ScorePublisher port on Redis: plan, then publish in one round trip."""

    def __init__(self, redis: aioredis.Redis, *, recent_per_driver: int = 200, recent_ttl_s: int = 86_400) -> None:
        self._redis = redis
        self._recent_per_driver = recent_per_driver
        self._recent_ttl_s = recent_ttl_s

    async def publish(self, scored: Sequence[ScoredTrip]) -> None:
        plan = plan_scores(scored)
        await publish_scores(
            self._redis, plan, recent_per_driver=self._recent_per_driver, recent_ttl_s=self._recent_ttl_s
        )
