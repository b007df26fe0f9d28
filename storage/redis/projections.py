"""Redis projections of a committed batch: resumable recent messages and the PUBLISHes that feed WebSockets
and invalidate every API replica's L1 and L2 entries (DESIGN.md §4, §5; names in storage/redis/keys.py).

Two halves. `plan_projection` is pure: it turns a batch's `ShardOutput`s into per-driver updates and
the live messages (JSON bytes, deterministic). `publish_batch` writes the plan in ONE pipeline round
trip: one EVALSHA per ≤ 500 drivers (a Lua script that, per driver, bumps the API's cache generation if a
trip ended, keeps the recent zset trimmed and PUBLISHes the driver's messages), then the `ws:fleet` chunks
and one `cache:invalidate` message. It is called after the PostgreSQL transaction committed and is safe to
repeat: ZADD of the same member is a no-op, a replayed older member is trimmed again below the newest, a
repeated generation bump only costs a cache miss, and viewers drop repeated messages by `seq`
(docs/PROJECTIONS.md). Redis connection errors propagate; the persistence actor retries the whole call.
No KEYS, no SCAN: every key is derived from a driver id.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec
import redis.asyncio as aioredis
from redis.exceptions import NoScriptError, ResponseError

from domain.batches import LivePosition, NewEvent, ShardOutput
from domain.claims import CRASH_TAG, opening_of_event
from storage.redis.keys import FLEET_CHANNEL, INVALIDATE_CHANNEL, LUA_APPEND_RECENT, LUA_KEYS, recent_key

FLEET_CHUNK_MESSAGES = 500  # one ws:fleet PUBLISH carries at most this many messages


# -- pure: messages --------------------------------------------------------------------------------


class PositionMessage(msgspec.Struct, frozen=True):
    """`type` = "position": the driver's newest reading in the batch; `seq` is its Kafka offset."""

    type: str
    driver_id: str
    seq: int
    ts_ms: int
    lat: float | None  # None: positions stripped in the pipeline (mileage_only, docs/PRIVACY.md §3)
    lon: float | None
    speed_kmh: float | None  # None: the device did not know (docs/DOMAIN.md §1)
    heading: float | None
    trip_id: uuid.UUID | None


class EventMessage(msgspec.Struct, frozen=True):
    """`type` = the domain event's tag; `payload` is the event's JSON object as stored in domain_events;
    `ts_ms` is its `occurred_at_ms`; `seq` the offset of the reading that emitted it."""

    type: str
    driver_id: str
    seq: int
    ts_ms: int
    event_id: uuid.UUID
    stream_version: int
    payload: Any


class ClaimOpenedMessage(msgspec.Struct, frozen=True):
    """`type` = "claim_opened": the claim a `crash_detected` of this batch opened (first notice of loss). It
    shares its crash's `seq` and `stream_version` and comes just before it; location and speed are null when
    unknown."""

    type: str
    driver_id: str
    seq: int
    ts_ms: int
    stream_version: int
    claim_id: uuid.UUID
    crash_event_id: uuid.UUID
    trip_id: uuid.UUID | None
    status: str
    trigger: str
    peak_g: float
    lat: float | None
    lon: float | None
    speed_kmh: float | None


class _OrderKey(msgspec.Struct):
    seq: int
    type: str
    stream_version: int = 0


_ENCODE = msgspec.json.Encoder().encode
_DECODE_ORDER = msgspec.json.Decoder(_OrderKey).decode


# Messages of the driver's risk stream (storage/redis/score_projection.py) carry the seq of the reading that
# ended the trip but are written later, from another stream whose versions are not comparable with the
# trip stream's: they rank after every trip-stream message of that seq.
RISK_MESSAGE_TYPES = frozenset({"risk_scored", "premium_quoted"})


def message_order(seq: int, message_type: str, stream_version: int = 0) -> tuple[int, int, int]:
    """The order of a driver's messages: by seq; at one seq the position (the reading itself) comes
    before the events that reading caused, which follow their stream order, then the risk stream's."""
    rank = 0 if message_type == "position" else 2 if message_type in RISK_MESSAGE_TYPES else 1
    return seq, rank, stream_version


def position_message(live: LivePosition) -> bytes:
    return _ENCODE(
        PositionMessage("position", live.driver_id, live.seq, live.ts_ms, live.lat, live.lon, live.speed_kmh,
                        live.heading, live.trip_id)
    )


def event_message(event: NewEvent, payload: Any) -> bytes:
    return _ENCODE(
        EventMessage(event.event_type, event.stream_id, event.seq, event.occurred_at_ms, event.event_id,
                     event.stream_version, payload)
    )


def claim_opened_message(event: NewEvent) -> bytes:
    """The announcement of the claim a crash event opened (domain.claims names it; the store opened it)."""
    o = opening_of_event(event)
    return _ENCODE(
        ClaimOpenedMessage("claim_opened", o.driver_id, event.seq, o.occurred_at_ms, event.stream_version, o.claim_id,
                           o.crash_event_id, o.trip_id, "open", o.trigger, o.peak_g, o.lat, o.lon, o.speed_kmh)
    )


@dataclass(frozen=True, slots=True)
class DriverUpdate:
    """What one write changes for one driver. `messages` are (seq, JSON) in `message_order`; `cache_stale`: what
    the API caches for the driver is stale (a trip ended, or a new score), so its cache generation moves."""

    driver_id: str
    cache_stale: bool
    messages: tuple[tuple[int, bytes], ...]


@dataclass(frozen=True, slots=True)
class ProjectionPlan:
    """Everything `publish_batch` writes, decided without I/O. Drivers are sorted by id."""

    drivers: tuple[DriverUpdate, ...]
    fleet_payloads: tuple[bytes, ...]
    invalidation: bytes | None

    @property
    def message_count(self) -> int:
        return sum(len(d.messages) for d in self.drivers)

    @property
    def stale_drivers(self) -> int:
        return sum(1 for d in self.drivers if d.cache_stale)


def plan_projection(outputs: Sequence[ShardOutput], *, fleet_chunk: int = FLEET_CHUNK_MESSAGES) -> ProjectionPlan:
    """Pure and deterministic: the same outputs give the same bytes, whatever their shard order."""
    if fleet_chunk < 1:
        raise ValueError(f"fleet_chunk must be ≥ 1, got {fleet_chunk}")
    lives: dict[str, LivePosition] = {}
    events: dict[str, list[NewEvent]] = {}
    for output in outputs:
        for live in output.live:
            held = lives.get(live.driver_id)
            if held is None or live.seq > held.seq:
                lives[live.driver_id] = live
        for event in output.events:
            events.setdefault(event.stream_id, []).append(event)
    drivers = tuple(_driver_update(d, lives.get(d), events.get(d, ())) for d in sorted(lives.keys() | events.keys()))
    fleet = tuple(fleet_payloads([m for d in drivers for _, m in d.messages], fleet_chunk))
    # Only a trip end changes what the API caches (trips pages; scores invalidate on their own): a position
    # alone must not drop every driving driver's L1 entries every batch.
    changed = [d.driver_id for d in drivers if d.cache_stale]
    return ProjectionPlan(drivers, fleet, invalidation_payload(changed) if changed else None)


def _driver_update(driver_id: str, live: LivePosition | None, events: Sequence[NewEvent]) -> DriverUpdate:
    if not events:  # the common case: a position and nothing else
        messages = () if live is None else ((live.seq, position_message(live)),)
        return DriverUpdate(driver_id, False, messages)
    keyed: list[tuple[tuple[int, int, int], bytes]] = []
    for event in events:
        payload = msgspec.json.decode(event.payload_json)
        key = message_order(event.seq, event.event_type, event.stream_version)
        if event.event_type == CRASH_TAG:
            # The claim shares its crash's order key; it goes first because every other reader breaks that tie by
            # the type's name ("claim_opened" < "crash_detected": Redis's ZRANGEBYSCORE, the socket's message_key).
            keyed.append((key, claim_opened_message(event)))
        keyed.append((key, event_message(event, payload)))
    if live is not None:
        keyed.append((message_order(live.seq, "position"), position_message(live)))
    keyed.sort(key=lambda item: item[0])
    return DriverUpdate(
        driver_id=driver_id,
        cache_stale=any(event.event_type == "trip_ended" for event in events),
        messages=tuple((key[0], message) for key, message in keyed),
    )


def fleet_payloads(messages: Sequence[bytes], chunk: int = FLEET_CHUNK_MESSAGES) -> list[bytes]:
    """`{"type":"fleet_batch","chunk":i,"chunks":n,"messages":[…]}` per ≤ `chunk` messages (spliced bytes:
    the messages are JSON already)."""
    if not messages:
        return []
    parts = [messages[i : i + chunk] for i in range(0, len(messages), chunk)]
    return [
        b'{"type":"fleet_batch","chunk":%d,"chunks":%d,"messages":[%s]}' % (i, len(parts), b",".join(part))
        for i, part in enumerate(parts)
    ]


def invalidation_payload(driver_ids: Iterable[str]) -> bytes:
    """`{"type":"drivers_changed","driver_ids":[…]}`: the drivers whose API-visible data changed (trip ended,
    new score, admin edit): every API replica drops their L1 entries."""
    return _ENCODE({"type": "drivers_changed", "driver_ids": list(driver_ids)})


# -- I/O: Redis ------------------------------------------------------------------------------------

# Why one script call per ≤ DRIVERS_PER_CALL drivers with a msgpack blob, not a command per key: the
# Python client spends ~10 µs packing and parsing each command, so 5 commands × 2,000 drivers cost
# ~90 ms a batch; one blob per 500 drivers costs ~1 ms to pack and a few ms of Redis time (measured,
# docs/PROJECTIONS.md). The script derives each driver's keys from its id (storage/redis/keys.py spells the
# names once, for Python and Lua), so it targets a single Redis, not a Redis Cluster.
# Drivers travel as ONE flat msgpack array of strings (nested per-driver arrays cost Redis ~2× the
# unpacking time). Per driver: id, cache stale ('1' or ''), message count n, then n × (seq, message JSON).
# ARGV: 1 keep (recent_per_driver), 2 ttl_s, 3 the msgpack array.
# A driver whose cached data went stale (a trip ended, a new score) gets `cache:gen:{id}` INCRed: storage/redis/
# cache.py's versioned L2 keys for that driver go stale (positions alone change nothing the API caches). Returns
# the number of drivers written. The scoring round's plans go through this same script (write_plan).
_BATCH_SCRIPT = LUA_KEYS + LUA_APPEND_RECENT + """
local keep = tonumber(ARGV[1])
local ttl = ARGV[2]
local a = cmsgpack.unpack(ARGV[3])
local drivers = 0
local i, total = 1, #a
while i <= total do
  local id = a[i]
  drivers = drivers + 1
  if a[i + 1] ~= '' then redis.call('INCR', generation_key(id)) end
  local first, last = i + 3, i + 2 + 2 * tonumber(a[i + 2])
  append_recent(id, a, first, last, keep, ttl)
  i = last + 1
end
return drivers
"""
_BATCH_SCRIPT_SHA = hashlib.sha1(_BATCH_SCRIPT.encode()).hexdigest()
DRIVERS_PER_CALL = 500  # bounds how long one script call holds Redis (~2 ms)
_MSGPACK = msgspec.msgpack.Encoder().encode


@dataclass(frozen=True, slots=True)
class ProjectionResult:
    """Counts of one `publish_batch`: drivers written, messages, drivers whose trip ended (their cache
    generation bumped and named in the invalidation), `ws:fleet` PUBLISHes."""

    drivers: int
    messages: int
    trips_ended: int
    fleet_publishes: int


def _append_driver(flat: list[str], update: DriverUpdate) -> None:
    # Text, not bytes: Redis's Lua cmsgpack predates the msgpack bin types. JSON is UTF-8, so lossless.
    flat += (update.driver_id, "1" if update.cache_stale else "", str(len(update.messages)))
    for seq, message in update.messages:
        flat += (str(seq), message.decode())


def _script_blob(updates: Sequence[DriverUpdate]) -> bytes:
    flat: list[str] = []
    for update in updates:
        _append_driver(flat, update)
    return _MSGPACK(flat)


async def publish_batch(
    redis: aioredis.Redis,
    outputs: Sequence[ShardOutput],
    *,
    recent_per_driver: int = 200,
    recent_ttl_s: int = 86_400,
) -> ProjectionResult:
    """Project a committed batch into Redis in one pipeline round trip (two after a Redis restart, which
    forgets the script). Idempotent in effect; see the module docstring."""
    plan = plan_projection(outputs)
    drivers = await write_plan(redis, plan, recent_per_driver=recent_per_driver, recent_ttl_s=recent_ttl_s)
    return ProjectionResult(
        drivers=drivers,
        messages=plan.message_count,
        trips_ended=plan.stale_drivers,
        fleet_publishes=len(plan.fleet_payloads),
    )


async def write_plan(
    redis: aioredis.Redis, plan: ProjectionPlan, *, recent_per_driver: int = 200, recent_ttl_s: int = 86_400
) -> int:
    """Write any plan (a batch's, or a scoring round's: storage/redis/score_projection.py) with the one script;
    returns the drivers written. Connection errors propagate (the callers retry the whole call)."""
    if recent_per_driver < 1 or recent_ttl_s < 1:
        raise ValueError("recent_per_driver and recent_ttl_s must be ≥ 1")
    if not plan.drivers:
        return 0
    chunks = range(0, len(plan.drivers), DRIVERS_PER_CALL)
    blobs = [_script_blob(plan.drivers[i : i + DRIVERS_PER_CALL]) for i in chunks]
    pipe = redis.pipeline(transaction=False)
    for blob in blobs:
        pipe.evalsha(_BATCH_SCRIPT_SHA, 0, recent_per_driver, recent_ttl_s, blob)
    for payload in plan.fleet_payloads:
        pipe.publish(FLEET_CHANNEL, payload)
    if plan.invalidation is not None:
        pipe.publish(INVALIDATE_CHANNEL, plan.invalidation)
    replies = await pipe.execute(raise_on_error=False)
    script_replies = replies[: len(blobs)]
    missing = [i for i, reply in enumerate(script_replies) if isinstance(reply, NoScriptError)]
    if missing:  # Redis restarted or SCRIPT FLUSH: load once, rerun only the calls that failed
        await redis.script_load(_BATCH_SCRIPT)
        retry = redis.pipeline(transaction=False)
        for i in missing:
            retry.evalsha(_BATCH_SCRIPT_SHA, 0, recent_per_driver, recent_ttl_s, blobs[i])
        for i, reply in zip(missing, await retry.execute(raise_on_error=False), strict=True):
            script_replies[i] = reply
    for reply in (*script_replies, *replies[len(blobs) :]):
        if isinstance(reply, ResponseError):
            raise reply
    return sum(int(r) for r in script_replies)


class RedisProjector:
    """The Projector port (usecases.ports.projector) on Redis: `publish_batch` above, with the client and the
    recent-messages bounds given once. Holds no connection of its own (the client pools them)."""

    def __init__(self, redis: aioredis.Redis, *, recent_per_driver: int = 200, recent_ttl_s: int = 86_400) -> None:
        self._redis = redis
        self._recent_per_driver = recent_per_driver
        self._recent_ttl_s = recent_ttl_s

    async def publish_batch(self, outputs: Sequence[ShardOutput]) -> ProjectionResult:
        return await publish_batch(
            self._redis, outputs, recent_per_driver=self._recent_per_driver, recent_ttl_s=self._recent_ttl_s
        )


async def read_recent(redis: aioredis.Redis, driver_id: str, since_seq: int = -1) -> list[bytes]:
    """Messages with seq > `since_seq` still held (the newest `recent_per_driver`), as JSON bytes ready to
    send, in `message_order`. A WebSocket resuming `?since=seq` sends these, then follows the channel."""
    members = await redis.zrangebyscore(recent_key(driver_id), f"({since_seq}", "+inf")
    keyed = [(message_order(k.seq, k.type, k.stream_version), m) for m in members for k in (_DECODE_ORDER(m),)]
    keyed.sort(key=lambda item: item[0])
    return [m for _, m in keyed]
