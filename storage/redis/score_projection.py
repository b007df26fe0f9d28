"""Redis side of scoring on trip end: the live `risk_scored`/`premium_quoted` messages and the cache bumps,
written after the scores committed to PostgreSQL (docs/SCORING.md). The ScorePublisher port on Redis.

Same conventions as storage/redis/projections.py (docs/PROJECTIONS.md): per driver, `INCR cache:gen:{id}` (the
API's L2 generation), the messages ZADDed into `ws:recent:{id}` scored by `seq` and PUBLISHed on
`ws:driver:{id}`; then `ws:fleet` chunks and one `cache:invalidate` message with the scored drivers. A driver
with several trips in a round gets them in trip order, each trip's messages in message order. Message shape:
`EventMessage` (type, driver_id, seq, ts_ms, event_id, stream_version, payload) with `seq` = the offset of the
reading that ended the trip and `stream_version` the version in the driver's risk stream. One pipeline round
trip per call; repeating it writes the same bytes (ZADD of the same member is a no-op; viewers drop repeats).
The latest score itself is not projected: the API reads it from PostgreSQL (and caches it under cache:gen).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import msgspec
import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from domain.scoring import EndedTrip
from storage.redis.keys import FLEET_CHANNEL, INVALIDATE_CHANNEL, LUA_APPEND_RECENT, LUA_KEYS
from storage.redis.projections import EventMessage, fleet_payloads, invalidation_payload, message_order
from usecases.ports.score_store import ScoredTrip, StoredRiskEvent

DRIVERS_PER_CALL = 500  # bounds how long one script call holds Redis

_ENCODE = msgspec.json.Encoder().encode
_MSGPACK = msgspec.msgpack.Encoder().encode


@dataclass(frozen=True, slots=True)
class ScoredDriver:
    """One driver's messages of a round, (seq, JSON): its trips in the order scored, each in message order."""

    driver_id: str
    messages: tuple[tuple[int, bytes], ...]


@dataclass(frozen=True, slots=True)
class ScorePlan:
    """Everything `publish_scores` writes, decided without I/O; drivers sorted by id."""

    drivers: tuple[ScoredDriver, ...]
    fleet_payloads: tuple[bytes, ...]
    invalidation: bytes | None


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


def plan_scores(scored: Sequence[ScoredTrip]) -> ScorePlan:
    """Pure and deterministic: drivers sorted by id, each driver's trips in the order given (the round's trip
    order), `ws:fleet` chunks of all messages in that order, one invalidation. A trip given twice is refused."""
    if len({s.trip.trip_id for s in scored}) != len(scored):
        raise ValueError("plan_scores takes each scored trip once")
    by_driver: dict[str, list[tuple[int, bytes]]] = {}
    for s in scored:
        by_driver.setdefault(s.trip.driver_id, []).extend(trip_messages(s.trip, s.events))
    drivers = tuple(ScoredDriver(d, tuple(by_driver[d])) for d in sorted(by_driver))
    fleet = tuple(fleet_payloads([m for d in drivers for _, m in d.messages]))
    return ScorePlan(drivers, fleet, invalidation_payload(d.driver_id for d in drivers) if drivers else None)


# Per driver in ONE flat msgpack array of strings (see storage/redis/projections.py for why; key names and the
# recent-zset append are storage/redis/keys.py's Lua fragments, shared with the batch projection):
#   id, message count n, then n × (seq, message JSON).
# ARGV: 1 keep (recent_per_driver), 2 ttl_s, 3 the array. Returns the number of drivers written.
# `cache:gen:{id}` is the API's L2 generation (storage/redis/cache.py): bumping it retires cached responses that
# embed the previous score.
_SCORE_SCRIPT = LUA_KEYS + LUA_APPEND_RECENT + """
local keep = tonumber(ARGV[1])
local ttl = ARGV[2]
local a = cmsgpack.unpack(ARGV[3])
local drivers = 0
local i, total = 1, #a
while i <= total do
  local id = a[i]
  drivers = drivers + 1
  redis.call('INCR', generation_key(id))
  local first, last = i + 2, i + 1 + 2 * tonumber(a[i + 1])
  append_recent(id, a, first, last, keep, ttl)
  i = last + 1
end
return drivers
"""


def _script_blob(drivers: Sequence[ScoredDriver]) -> bytes:
    flat: list[str] = []
    for d in drivers:
        flat += (d.driver_id, str(len(d.messages)))
        for seq, message in d.messages:
            flat += (str(seq), message.decode())
    return _MSGPACK(flat)


async def publish_scores(
    redis: aioredis.Redis, plan: ScorePlan, *, recent_per_driver: int = 200, recent_ttl_s: int = 86_400
) -> int:
    """Write `plan` in one pipeline round trip (EVAL, not EVALSHA: one call a second at most, so shipping the
    script text costs nothing and a Redis restart needs no reload). Returns the drivers written. Connection
    errors propagate (the scorer retries the whole call)."""
    if recent_per_driver < 1 or recent_ttl_s < 1:
        raise ValueError("recent_per_driver and recent_ttl_s must be ≥ 1")
    if not plan.drivers:
        return 0
    pipe = redis.pipeline(transaction=False)
    calls = range(0, len(plan.drivers), DRIVERS_PER_CALL)
    for i in calls:
        blob = _script_blob(plan.drivers[i : i + DRIVERS_PER_CALL])
        pipe.eval(_SCORE_SCRIPT, 0, recent_per_driver, recent_ttl_s, blob)
    for payload in plan.fleet_payloads:
        pipe.publish(FLEET_CHANNEL, payload)
    if plan.invalidation is not None:
        pipe.publish(INVALIDATE_CHANNEL, plan.invalidation)
    replies = await pipe.execute(raise_on_error=False)
    for reply in replies:
        if isinstance(reply, ResponseError):
            raise reply
    return sum(int(r) for r in replies[: len(calls)])


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
