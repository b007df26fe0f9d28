"""Redis side of scoring on trip end: the latest-score projection and the live `risk_scored`/`premium_quoted`
messages, written after the scores committed to PostgreSQL (docs/SCORING.md).

Same conventions as storage/redis/projections.py (docs/PROJECTIONS.md): per driver, `driver:{id}:score` holds the
JSON of the newest score (moves only forward in `scored_at_ms`, the trip's device end time), the messages
are ZADDed into `ws:recent:{id}` scored by `seq` and PUBLISHed on `ws:driver:{id}`; then `ws:fleet` chunks
and one `cache:invalidate` message with the scored drivers. Message shape: `EventMessage` (type, driver_id,
seq, ts_ms, event_id, stream_version, payload) with `seq` = the offset of the reading that ended the trip and
`stream_version` the version in the driver's risk stream. One pipeline round trip per call; repeating it
writes the same bytes (ZADD of the same member is a no-op; viewers drop repeated messages).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import msgspec
import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from domain.events import RiskScored, decode_event
from domain.risk_assessment import RiskAssessment
from domain.scoring import EndedTrip
from storage.postgres.score_store import StoredRiskEvent
from storage.redis.projections import (
    FLEET_CHANNEL,
    INVALIDATE_CHANNEL,
    EventMessage,
    fleet_payloads,
    invalidation_payload,
    message_order,
)

DRIVERS_PER_CALL = 500  # bounds how long one script call holds Redis


def score_key(driver_id: str) -> str:
    return f"driver:{driver_id}:score"


class ScoreProjection(RiskAssessment, frozen=True, kw_only=True):
    """`driver:{id}:score`: the model's assessment at the end of trip `trip_id` (`scored_at_ms`, device time);
    `seq` is the offset of the reading that ended that trip."""

    scored_at_ms: int
    trip_id: uuid.UUID | None
    seq: int


_ENCODE = msgspec.json.Encoder().encode
_DECODE_SCORE = msgspec.json.Decoder(ScoreProjection).decode
_MSGPACK = msgspec.msgpack.Encoder().encode


@dataclass(frozen=True, slots=True)
class ScoredDriver:
    """What one scoring writes for one driver: the score JSON and its messages, (seq, JSON) in message order."""

    driver_id: str
    scored_at_ms: int
    score_json: bytes
    messages: tuple[tuple[int, bytes], ...]


@dataclass(frozen=True, slots=True)
class ScorePlan:
    """Everything `publish_scores` writes, decided without I/O; drivers sorted by id."""

    drivers: tuple[ScoredDriver, ...]
    fleet_payloads: tuple[bytes, ...]
    invalidation: bytes | None


def score_projection(scored: RiskScored, seq: int) -> ScoreProjection:
    return ScoreProjection(
        driver_id=scored.driver_id,
        model_version=scored.model_version,
        feature_hash=scored.feature_hash,
        score=scored.score,
        band=scored.band,
        rate=scored.rate,
        model_rate=scored.model_rate,
        prior_rate=scored.prior_rate,
        credibility=scored.credibility,
        top_factors=scored.top_factors,
        scored_at_ms=scored.scored_at_ms,
        trip_id=scored.trip_id,
        seq=seq,
    )


def scored_driver(trip: EndedTrip, events: Sequence[StoredRiskEvent]) -> ScoredDriver:
    """Pure: one driver's score JSON and messages from its stored risk events (one `risk_scored`, at most one
    `premium_quoted`)."""
    keyed = []
    scored: RiskScored | None = None
    for e in events:
        if e.event_type == "risk_scored":
            event = decode_event(e.payload_json)
            assert isinstance(event, RiskScored)
            scored = event
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
    if scored is None:
        raise ValueError(f"no risk_scored event for {trip.driver_id} trip {trip.trip_id}")
    keyed.sort(key=lambda item: item[0])
    return ScoredDriver(
        driver_id=trip.driver_id,
        scored_at_ms=scored.scored_at_ms,
        score_json=_ENCODE(score_projection(scored, trip.seq)),
        messages=tuple((key[0], message) for key, message in keyed),
    )


def plan_scores(scored: Sequence[ScoredDriver]) -> ScorePlan:
    """Pure and deterministic: drivers sorted by id, `ws:fleet` chunks of their messages, one invalidation."""
    drivers = tuple(sorted(scored, key=lambda d: d.driver_id))
    if len({d.driver_id for d in drivers}) != len(drivers):
        raise ValueError("plan_scores takes one scoring per driver")
    fleet = tuple(fleet_payloads([m for d in drivers for _, m in d.messages]))
    return ScorePlan(drivers, fleet, invalidation_payload(d.driver_id for d in drivers) if drivers else None)


# Per driver in ONE flat msgpack array of strings (see storage/redis/projections.py for why):
#   id, scored_at_ms, score JSON, message count n, then n × (seq, message JSON).
# ARGV: 1 keep (recent_per_driver), 2 ttl_s, 3 the array. Returns how many score keys moved.
# The score key moves when the new score is not older (>=: a repeat rewrites the same bytes; a new model
# version for the same trip replaces the old one). `cache:gen:{id}` is the API's L2 generation (H2's
# storage/redis/cache.py): bumping it retires cached responses that embed the previous score.
_SCORE_SCRIPT = """
local keep = tonumber(ARGV[1])
local ttl = ARGV[2]
local a = cmsgpack.unpack(ARGV[3])
local updated = 0
local i, total = 1, #a
while i <= total do
  local id = a[i]
  local key = 'driver:' .. id .. ':score'
  local held = redis.call('GET', key)
  if (not held) or tonumber(cjson.decode(held)['scored_at_ms']) <= tonumber(a[i + 1]) then
    redis.call('SET', key, a[i + 2])
    updated = updated + 1
  end
  redis.call('INCR', 'cache:gen:' .. id)
  local first, last = i + 4, i + 3 + 2 * tonumber(a[i + 3])
  if last > first then
    local recent = 'ws:recent:' .. id
    local args = {}
    for j = first, last, 2 do
      args[#args + 1] = a[j]
      args[#args + 1] = a[j + 1]
    end
    redis.call('ZADD', recent, unpack(args))
    redis.call('ZREMRANGEBYRANK', recent, 0, -(keep + 1))
    redis.call('EXPIRE', recent, ttl)
    for j = first + 1, last, 2 do redis.call('PUBLISH', 'ws:driver:' .. id, a[j]) end
  end
  i = last + 1
end
return updated
"""


def _script_blob(drivers: Sequence[ScoredDriver]) -> bytes:
    flat: list[str] = []
    for d in drivers:
        flat += (d.driver_id, str(d.scored_at_ms), d.score_json.decode(), str(len(d.messages)))
        for seq, message in d.messages:
            flat += (str(seq), message.decode())
    return _MSGPACK(flat)


async def publish_scores(
    redis: aioredis.Redis, plan: ScorePlan, *, recent_per_driver: int = 200, recent_ttl_s: int = 86_400
) -> int:
    """Write `plan` in one pipeline round trip (EVAL, not EVALSHA: one call a second at most, so shipping the
    script text costs nothing and a Redis restart needs no reload). Returns score keys moved. Connection
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


async def read_score(redis: aioredis.Redis, driver_id: str) -> ScoreProjection | None:
    """The driver's newest projected score, or None if none was projected (read PostgreSQL then)."""
    raw = await redis.get(score_key(driver_id))
    return None if raw is None else _DECODE_SCORE(raw)
