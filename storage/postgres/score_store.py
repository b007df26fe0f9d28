"""PostgreSQL side of scoring on trip end: load what a round needs, write what it decided, find what was missed.

Bounded queries whatever the batch size (arrays in, `unnest`, no per-driver round trips):
- `load_scoring_inputs`: every driver's trips in its scoring window (one query) and active policy (one);
- `write_scores`: ONE transaction appends `risk_scored`/`premium_quoted` to each driver's risk stream
  (heads locked and compare-and-set, storage.postgres.event_store_sql), inserts `risk_scores` rows and reprices the
  active policies, one statement per table. Keyed by the events' deterministic ids: a scoring already
  stored writes nothing and returns what is stored, so Redis can be republished byte for byte;
- `unscored_latest_trips`: the catch-up query (each driver's latest trip that has no score).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg
import msgspec

from domain.events import PremiumQuoted, RiskScored, decode_event, encode_event, event_type
from domain.scoring import EndedTrip, PolicyTerms, ScoringOutcome, risk_stream_id, window_start_ms
from domain.trip_summary import TripSummary
from storage.postgres import event_store_sql as es
from storage.postgres.event_store_sql import ms_to_ts, ts_to_ms
from storage.postgres.partitions import PartitionCache, ensure_for_timestamps
from storage.postgres.policies import active_policies
from storage.postgres.pool import plain

_TRIP_FIELDS = [n for n, _ in es.TRIP_COLUMNS]
_TIME_COLUMNS = {"start_ms": "t.start_time", "end_ms": "t.end_time"}
_TRIP_SELECT = ", ".join(
    f"{ts_to_ms(_TIME_COLUMNS[n])} AS {n}" if n in _TIME_COLUMNS else f"t.{n}" for n in _TRIP_FIELDS
)

# Trips that ended in (from, to]: the window ends at the scored trip's end (device time), so a score never
# depends on when scoring ran or on trips that ended later. OFFSET 0 keeps each lateral subquery an index
# probe on trips (driver_id, start_time, end_time) (same fence as event_store_sql.LOAD_READINGS).
LOAD_WINDOWS = f"""
SELECT {_TRIP_SELECT}
FROM unnest($1::text[], $2::bigint[], $3::bigint[]) AS w(driver_id, from_ms, to_ms)
CROSS JOIN LATERAL (
    SELECT * FROM trips t
    WHERE t.driver_id = w.driver_id
      AND t.start_time <= {ms_to_ts("w.to_ms")}
      AND t.end_time > {ms_to_ts("w.from_ms")} AND t.end_time <= {ms_to_ts("w.to_ms")}
    OFFSET 0
) t
ORDER BY t.driver_id, t.start_time, t.trip_id
"""

INSERT_SCORES = f"""
INSERT INTO risk_scores (score_id, driver_id, scored_at, score, band, model_version, feature_hash, credibility,
                         trip_id, explanation)
SELECT s.score_id, s.driver_id, {ms_to_ts("s.scored_at_ms")}, s.score, s.band, s.model_version, s.feature_hash,
       s.credibility, s.trip_id, convert_from(s.explanation, 'UTF8')::jsonb
FROM unnest($1::uuid[], $2::text[], $3::bigint[], $4::float8[], $5::text[], $6::text[], $7::text[], $8::float8[],
            $9::uuid[], $10::bytea[])
     AS s(score_id, driver_id, scored_at_ms, score, band, model_version, feature_hash, credibility, trip_id,
          explanation)
ORDER BY s.score_id
ON CONFLICT (score_id) DO NOTHING
RETURNING score_id
"""

# The policies a round priced, locked in id order (a fixed lock order) so the check below and the update
# see the same rows; admin edits in between make the round recompute (StalePolicy).
LOCK_POLICIES = """
SELECT policy_id, current_premium, status FROM policies WHERE policy_id = ANY($1::uuid[])
ORDER BY policy_id FOR UPDATE
"""

# Reprices each policy unless a newer score of its driver is already stored (scores only move forward).
UPDATE_POLICIES = f"""
UPDATE policies AS p
SET current_premium = u.premium, last_score = u.score, last_band = u.band, updated_at = now()
FROM unnest($1::uuid[], $2::numeric[], $3::float8[], $4::text[], $5::text[], $6::bigint[])
     AS u(policy_id, premium, score, band, driver_id, scored_at_ms)
WHERE p.policy_id = u.policy_id
  AND NOT EXISTS (SELECT 1 FROM risk_scores r
                  WHERE r.driver_id = u.driver_id AND r.scored_at > {ms_to_ts("u.scored_at_ms")})
"""

# Events a previous run stored: the partition key (occurred_at) prunes to one month per id.
STORED_EVENTS = f"""
SELECT e.event_id, e.stream_version, e.payload::text AS payload
FROM unnest($1::uuid[], $2::bigint[]) AS k(event_id, occurred_at_ms)
JOIN domain_events e ON e.event_id = k.event_id AND e.occurred_at = {ms_to_ts("k.occurred_at_ms")}
"""

# Catch-up: each driver's latest trip ended within the window (wall clock) that has no score row, oldest
# first, bounded. `seq` is the offset of the trip's last stored reading: the live path's offset of the
# reading that ended it is not stored (it equals this for ignition-off ends, is later for gaps and stops).
UNSCORED_LATEST_TRIPS = f"""
WITH latest AS (
    SELECT DISTINCT ON (t.driver_id) t.driver_id, t.trip_id, t.start_time, t.end_time
    FROM trips t
    WHERE t.end_time > now() - $1::float8 * interval '1 day'
    ORDER BY t.driver_id, t.end_time DESC, t.trip_id DESC
), missing AS (
    SELECT l.* FROM latest l
    WHERE NOT EXISTS (SELECT 1 FROM risk_scores r
                      WHERE r.driver_id = l.driver_id AND r.scored_at = l.end_time AND r.trip_id = l.trip_id)
    ORDER BY l.end_time, l.driver_id
    LIMIT $2
)
SELECT m.driver_id, m.trip_id, {ts_to_ms("m.end_time")} AS end_ms, coalesce(s.seq, -1) AS seq
FROM missing m
LEFT JOIN LATERAL (
    SELECT max(e.source_offset) AS seq FROM telematics_events e
    WHERE e.driver_id = m.driver_id AND e.ts >= m.start_time AND e.ts <= m.end_time
) s ON true
ORDER BY m.end_time, m.driver_id
"""


class StalePolicy(Exception):
    """A policy changed between loading and writing (admin edit): nothing was written; reload and recompute."""


@dataclass(frozen=True, slots=True)
class ScoringInputs:
    """Per driver: the trips of its scoring window (start order) and its active policy, if any."""

    trips: dict[str, list[TripSummary]]
    policies: dict[str, PolicyTerms]


@dataclass(frozen=True, slots=True)
class StoredRiskEvent:
    """A risk event as stored: its stream version and canonical JSON (encode_event bytes)."""

    event_id: uuid.UUID
    event_type: str
    stream_version: int
    occurred_at_ms: int
    payload_json: bytes


@dataclass(frozen=True, slots=True)
class ScoreWriteResult:
    """Counts of one `write_scores`, and every outcome's events as stored (fresh or from an earlier run)."""

    scores_inserted: int
    events_inserted: int
    policies_updated: int
    stored: dict[uuid.UUID, StoredRiskEvent]


async def load_scoring_inputs(pool: asyncpg.Pool, trips: Sequence[EndedTrip], window_days: float) -> ScoringInputs:
    """Two queries for any number of drivers (one trip each)."""
    ids = [t.driver_id for t in trips]
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            LOAD_WINDOWS, ids, [window_start_ms(t.end_ms, window_days) for t in trips], [t.end_ms for t in trips]
        )
        policy_rows = (await active_policies(conn, ids)).values()
    by_driver: dict[str, list[TripSummary]] = {d: [] for d in ids}
    for r in rows:
        by_driver[r["driver_id"]].append(
            TripSummary(**{n: plain(r[n]) for n in _TRIP_FIELDS})  # type: ignore[arg-type]
        )
    policies = {
        r["driver_id"]: PolicyTerms(
            policy_id=plain(r["policy_id"]),
            base_premium=r["base_premium"],
            current_premium=r["current_premium"],
            per_km_rate=r["per_km_rate"],
            currency=r["currency"],
        )
        for r in policy_rows
    }
    return ScoringInputs(by_driver, policies)


async def write_scores(
    pool: asyncpg.Pool, outcomes: Sequence[ScoringOutcome], partitions: PartitionCache | None = None
) -> ScoreWriteResult:
    """Persist a round in one transaction (at most one outcome per driver). Outcomes whose `risk_scored` id is
    already stored are skipped whole (events, score row, policy) and come back as stored. Raises StalePolicy
    (nothing written) when a priced policy is no longer active at the premium the quote started from."""
    if not outcomes:
        return ScoreWriteResult(0, 0, 0, {})
    if len({o.risk_scored.driver_id for o in outcomes}) != len(outcomes):
        raise ValueError("write_scores takes at most one outcome per driver")
    async with pool.acquire() as conn:
        months = sorted({o.risk_scored.occurred_at_ms for o in outcomes})
        await ensure_for_timestamps(conn, "domain_events", months, partitions)
        async with conn.transaction():
            inserted = {plain(r["score_id"]) for r in await conn.fetch(INSERT_SCORES, *_score_columns(outcomes))}
            fresh = [o for o in outcomes if o.risk_scored.event_id in inserted]
            quotes = [o.premium_quoted for o in fresh if o.premium_quoted is not None]
            await _check_policies(conn, quotes)
            stored = await _append(conn, fresh)
            policies_updated = 0
            if quotes:
                policies_updated = _rowcount(await conn.execute(UPDATE_POLICIES, *_policy_columns(quotes)))
            events_inserted = len(stored)
            earlier = [e for o in outcomes if o.risk_scored.event_id not in inserted for e in _events(o)]
            stored.update(await _stored(conn, earlier))
    return ScoreWriteResult(len(inserted), events_inserted, policies_updated, stored)


async def unscored_latest_trips(pool: asyncpg.Pool, window_days: float, limit: int) -> list[EndedTrip]:
    """Catch-up: up to `limit` drivers whose latest trip (ended within `window_days` of now) has no score."""
    async with pool.acquire() as conn:
        rows = await conn.fetch(UNSCORED_LATEST_TRIPS, float(window_days), limit)
    return [EndedTrip(r["driver_id"], plain(r["trip_id"]), r["end_ms"], r["seq"]) for r in rows]


# -- helpers ---------------------------------------------------------------------------------------------


def _events(outcome: ScoringOutcome) -> list[RiskScored | PremiumQuoted]:
    return [outcome.risk_scored] if outcome.premium_quoted is None else [outcome.risk_scored, outcome.premium_quoted]


def explanation_json(event: RiskScored) -> bytes:
    """`risk_scores.explanation`: the top factors and the rates the score maps from."""
    return msgspec.json.encode(
        {
            "top_factors": event.top_factors,
            "rate": event.rate,
            "model_rate": event.model_rate,
            "prior_rate": event.prior_rate,
        }
    )


# Column arrays in the order of the statements' parameters.
_SCORE_FIELDS = (
    "event_id", "driver_id", "occurred_at_ms", "score", "band", "model_version", "feature_hash", "credibility",
    "trip_id",
)  # fmt: skip
_POLICY_FIELDS = ("policy_id", "premium", "score", "band", "driver_id", "occurred_at_ms")


def _columns(rows: Sequence, fields: Sequence[str]) -> list[list]:
    return [[getattr(r, name) for r in rows] for name in fields]


def _score_columns(outcomes: Sequence[ScoringOutcome]) -> list[list]:
    scored = [o.risk_scored for o in outcomes]
    return [*_columns(scored, _SCORE_FIELDS), [explanation_json(e) for e in scored]]


def _policy_columns(quotes: Sequence[PremiumQuoted]) -> list[list]:
    return _columns(quotes, _POLICY_FIELDS)


async def _check_policies(conn: asyncpg.Connection, quotes: Sequence[PremiumQuoted]) -> None:
    if not quotes:
        return
    rows = {plain(r["policy_id"]): r for r in await conn.fetch(LOCK_POLICIES, [q.policy_id for q in quotes])}
    stale = []
    for q in quotes:
        row = rows.get(q.policy_id)
        held = None if row is None or row["current_premium"] <= 0 else row["current_premium"]
        if row is None or row["status"] != "active" or held != q.previous_premium:
            stale.append(q.driver_id)
    if stale:
        raise StalePolicy(f"policies changed while scoring: {', '.join(sorted(stale)[:10])}")


async def _append(conn: asyncpg.Connection, fresh: Sequence[ScoringOutcome]) -> dict[uuid.UUID, StoredRiskEvent]:
    """Append the fresh outcomes' events after each risk stream's locked head (compare-and-set on it)."""
    if not fresh:
        return {}
    streams = sorted({risk_stream_id(o.risk_scored.driver_id) for o in fresh})
    heads = {r["stream_id"]: r["version"] for r in await conn.fetch(es.LOCK_STREAMS, streams)}
    rows: list[StoredRiskEvent] = []
    stream_of: list[str] = []
    moved: dict[str, tuple[int, int]] = {}
    for outcome in fresh:
        stream = risk_stream_id(outcome.risk_scored.driver_id)
        version = moved.get(stream, (heads[stream], heads[stream]))[0]
        for event in _events(outcome):
            version += 1
            rows.append(
                StoredRiskEvent(event.event_id, event_type(event), version, event.occurred_at_ms, encode_event(event))
            )
            stream_of.append(stream)
        moved[stream] = (version, heads[stream])
    result = await conn.fetchrow(
        es.APPEND_EVENTS,
        [r.event_id for r in rows],
        stream_of,
        [r.stream_version for r in rows],
        [r.event_type for r in rows],
        [r.payload_json for r in rows],
        [r.occurred_at_ms for r in rows],
        list(moved),
        [v for v, _ in moved.values()],
        [h for _, h in moved.values()],
    )
    if result["heads"] != len(moved) or result["events"] != len(rows):
        raise RuntimeError(f"risk streams moved while locked: {result['heads']} of {len(moved)} heads updated")
    return {r.event_id: r for r in rows}


async def _stored(
    conn: asyncpg.Connection, events: Sequence[RiskScored | PremiumQuoted]
) -> dict[uuid.UUID, StoredRiskEvent]:
    """The stored form of events an earlier run wrote (their payload may differ from a recomputation: a
    premium quoted against the policy as it was then)."""
    if not events:
        return {}
    rows = await conn.fetch(STORED_EVENTS, [e.event_id for e in events], [e.occurred_at_ms for e in events])
    out = {}
    for r in rows:
        event = decode_event(r["payload"])  # canonical bytes again: jsonb reorders keys
        out[plain(r["event_id"])] = StoredRiskEvent(
            event.event_id, event_type(event), r["stream_version"], event.occurred_at_ms, encode_event(event)
        )
    return out


def _rowcount(status: str) -> int:
    return int(status.rsplit(" ", 1)[1])
