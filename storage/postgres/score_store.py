"""PostgreSQL side of scoring on trip end: the ScoreStore port (usecases/ports/score_store.py).

Bounded queries whatever the batch size (arrays in, `unnest`, no per-driver round trips):
- `unscored_trips`: each asked driver's oldest unscored trips (no `risk_scores` row with the trip's id);
- `load_inputs`: every driver's trips in its span (one query) and active policy (one, storage.postgres.policies);
- `write_scores`: ONE transaction inserts `risk_scores` rows, appends `risk_scored`/`premium_quoted` to each
  driver's risk stream through the event store's append (storage.postgres.event_store.append_events) and
  reprices the active policies, one statement per table. Keyed by the events' deterministic ids: a scoring
  already stored writes nothing and returns what is stored, so Redis can be republished byte for byte;
- `oldest_unscored_trips`: the catch-up query (every unscored trip, oldest first); `trip_seqs` finds the offset
  of a trip's last reading for trips whose submission was lost.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import asyncpg
import msgspec

from domain.batches import NewEvent
from domain.events import DisputeRescored, PremiumQuoted, RiskScored, decode_event, encode_event, event_type
from domain.features import FEATURE_NAMES
from domain.scoring import UNKNOWN_SEQ, EndedTrip, ScoringOutcome, risk_stream_id
from domain.trip_summary import TripSummary
from storage.postgres import event_store_sql as es
from storage.postgres.event_store import append_events, trip_summary_of
from storage.postgres.event_store_sql import ms_to_ts, ts_to_ms
from storage.postgres.partitions import PartitionCache, ensure_for_timestamps
from storage.postgres.policies import active_policies, policy_terms
from storage.postgres.pool import plain
from storage.postgres.premium_ledger import write_ledger
from storage.score_store_rules import check_trip_order, first_per_policy, is_stale, last_per_policy
from usecases.ports.score_store import (
    ScoreWriteResult,
    ScoringInputs,
    StalePolicy,
    StoredRiskEvent,
    TripSpan,
)

__all__ = ["PostgresScoreStore", "ScoreWriteResult", "StalePolicy", "StoredRiskEvent"]

_TRIP_FIELDS = [n for n, _ in es.TRIP_COLUMNS]
_TIME_COLUMNS = {"start_ms": "t.start_time", "end_ms": "t.end_time"}
TRIP_SELECT = ", ".join(
    f"{ts_to_ms(_TIME_COLUMNS[n])} AS {n}" if n in _TIME_COLUMNS else f"t.{n}" for n in _TRIP_FIELDS
)

# Trips that ended in (from, to]: the union of the windows of a driver's trips scored in one round; each window
# ends at its trip's end (device time), so a score never depends on when scoring ran or on later trips.
# OFFSET 0 keeps each lateral subquery an index probe on trips (driver_id, start_time, end_time) (same fence as
# event_store_sql.LOAD_READINGS).
LOAD_WINDOWS = f"""
SELECT {TRIP_SELECT}
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
                         trip_id, rules_version, explanation)
SELECT s.score_id, s.driver_id, {ms_to_ts("s.scored_at_ms")}, s.score, s.band, s.model_version, s.feature_hash,
       s.credibility, s.trip_id, nullif(s.rules_version, ''), convert_from(s.explanation, 'UTF8')::jsonb
FROM unnest($1::uuid[], $2::text[], $3::bigint[], $4::float8[], $5::text[], $6::text[], $7::text[], $8::float8[],
            $9::uuid[], $10::text[], $11::bytea[])
     AS s(score_id, driver_id, scored_at_ms, score, band, model_version, feature_hash, credibility, trip_id,
          rules_version, explanation)
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

# "Scored" is a risk_scores row with the trip's id. Scorer rows have scored_at = the trip's end, which makes the
# test an index probe on (driver_id, scored_at, …) instead of a scan of the driver's scores per trip.
_UNSCORED = """NOT EXISTS (SELECT 1 FROM risk_scores r
                   WHERE r.driver_id = t.driver_id AND r.scored_at = t.end_time AND r.trip_id = t.trip_id)"""

# Each asked driver's oldest unscored trips, in trip order (domain.scoring.trip_order). Reads every trip of the
# driver (index on trips (driver_id, start_time, end_time)) and probes its score: docs/SCORING.md, limits.
UNSCORED_TRIPS = f"""
SELECT u.driver_id, u.trip_id, {ts_to_ms("u.end_time")} AS end_ms
FROM unnest($1::text[]) AS d(driver_id)
CROSS JOIN LATERAL (
    SELECT t.driver_id, t.trip_id, t.end_time FROM trips t
    WHERE t.driver_id = d.driver_id AND {_UNSCORED}
    ORDER BY t.end_time, t.trip_id
    LIMIT $2
) u
ORDER BY u.driver_id, u.end_time, u.trip_id
"""

# Catch-up: every unscored trip of any age, oldest first, bounded.
OLDEST_UNSCORED_TRIPS = f"""
SELECT t.driver_id, t.trip_id, {ts_to_ms("t.end_time")} AS end_ms
FROM trips t
WHERE {_UNSCORED}
ORDER BY t.end_time, t.trip_id
LIMIT $1
"""

# The offset of a trip's last stored reading: the live path's `seq` (the offset of the reading that ended it)
# is not stored; this equals it for ignition-off ends and is lower for trips closed by a gap or a stop.
TRIP_SEQS = f"""
SELECT t.trip_id, coalesce(s.seq, {UNKNOWN_SEQ}) AS seq
FROM unnest($1::uuid[]) AS i(trip_id)
JOIN trips t ON t.trip_id = i.trip_id
LEFT JOIN LATERAL (
    SELECT max(e.source_offset) AS seq FROM telematics_events e
    WHERE e.driver_id = t.driver_id AND e.ts >= t.start_time AND e.ts <= t.end_time
) s ON true
"""

# The heads the fresh events are numbered after; append_events then locks them and compare-and-sets.
STREAM_HEADS = "SELECT stream_id, version FROM streams WHERE stream_id = ANY($1::text[])"


class PostgresScoreStore:
    """The ScoreStore port on PostgreSQL. Cheap to construct; holds no connection of its own."""

    def __init__(self, pool: asyncpg.Pool, partitions: PartitionCache | None = None) -> None:
        self._pool = pool
        self._partitions = partitions if partitions is not None else PartitionCache()

    async def unscored_trips(self, driver_ids: Sequence[str], limit_per_driver: int) -> dict[str, list[EndedTrip]]:
        ids = list(dict.fromkeys(driver_ids))
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(UNSCORED_TRIPS, ids, limit_per_driver)
        out: dict[str, list[EndedTrip]] = {d: [] for d in ids}
        for r in rows:
            out[r["driver_id"]].append(EndedTrip(r["driver_id"], plain(r["trip_id"]), r["end_ms"], UNKNOWN_SEQ))
        return out

    async def trip_seqs(self, trips: Sequence[EndedTrip]) -> dict[uuid.UUID, int]:
        if not trips:
            return {}
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(TRIP_SEQS, [t.trip_id for t in trips])
        return {plain(r["trip_id"]): r["seq"] for r in rows}

    async def load_inputs(self, spans: Sequence[TripSpan]) -> ScoringInputs:
        """Two queries for any number of drivers (one span each)."""
        ids = [s.driver_id for s in spans]
        if len(set(ids)) != len(ids):
            raise ValueError("load_inputs takes one span per driver")
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(LOAD_WINDOWS, ids, [s.from_ms for s in spans], [s.to_ms for s in spans])
            policy_rows = (await active_policies(conn, ids)).values()
        by_driver: dict[str, list[TripSummary]] = {d: [] for d in ids}
        for r in rows:
            by_driver[r["driver_id"]].append(
                trip_summary_of(r)
            )
        policies = {r["driver_id"]: policy_terms(r) for r in policy_rows}
        return ScoringInputs(by_driver, policies)

    async def write_scores(self, outcomes: Sequence[ScoringOutcome]) -> ScoreWriteResult:
        """Persist a round in one transaction (see the port). Several outcomes per driver, in trip order: the
        policy is checked against each policy's first fresh quote and moved to its last."""
        if not outcomes:
            return ScoreWriteResult(0, 0, 0, {})
        check_trip_order(outcomes)
        async with self._pool.acquire() as conn:
            months = sorted({o.risk_scored.occurred_at_ms for o in outcomes})
            await ensure_for_timestamps(conn, "domain_events", months, self._partitions)
            async with conn.transaction():
                inserted = {plain(r["score_id"]) for r in await conn.fetch(INSERT_SCORES, *_score_columns(outcomes))}
                fresh = [o for o in outcomes if o.risk_scored.event_id in inserted]
                quotes = [o.premium_quoted for o in fresh if o.premium_quoted is not None]
                await _check_policies(conn, first_per_policy(quotes))
                stored = await _append(conn, fresh)
                await write_ledger(conn, [(stored[e.event_id].stream_version, e) for o in fresh for e in o.events()])
                policies_updated = 0
                if quotes:
                    last = last_per_policy(quotes)
                    policies_updated = _rowcount(await conn.execute(UPDATE_POLICIES, *_policy_columns(last)))
                events_inserted = len(stored)
                earlier = [e for o in outcomes if o.risk_scored.event_id not in inserted for e in o.events()]
                stored.update(await _stored(conn, earlier))
        return ScoreWriteResult(len(inserted), events_inserted, policies_updated, stored)

    async def oldest_unscored_trips(self, limit: int) -> list[EndedTrip]:
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(OLDEST_UNSCORED_TRIPS, limit)
        return [EndedTrip(r["driver_id"], plain(r["trip_id"]), r["end_ms"], UNKNOWN_SEQ) for r in rows]


# -- helpers ---------------------------------------------------------------------------------------------


def explanation_json(event: RiskScored | DisputeRescored, **extra: object) -> bytes:
    """`risk_scores.explanation`: the top factors and the rates the score maps from, and the model's input
    features by name when the event recorded them (issue 16 item 5: `autoins explain` recomputes from them)."""
    explanation: dict[str, object] = {
        "top_factors": event.top_factors,
        "rate": event.rate,
        "model_rate": event.model_rate,
        "prior_rate": event.prior_rate,
        **extra,
    }
    if event.features:
        explanation["features"] = dict(zip(FEATURE_NAMES, event.features, strict=True))
    return msgspec.json.encode(explanation)


# Column arrays in the order of the statements' parameters.
_SCORE_FIELDS = (
    "event_id", "driver_id", "occurred_at_ms", "score", "band", "model_version", "feature_hash", "credibility",
    "trip_id", "rules_version",
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
        if is_stale(q, None, None) if row is None else is_stale(q, row["status"], row["current_premium"]):
            stale.append(q.driver_id)
    if stale:
        raise StalePolicy(f"policies changed while scoring: {', '.join(sorted(stale)[:10])}")


async def _append(conn: asyncpg.Connection, fresh: Sequence[ScoringOutcome]) -> dict[uuid.UUID, StoredRiskEvent]:
    """Number the fresh outcomes' events after each risk stream's head, in outcome order, and append them
    through the event store (which locks the heads and compare-and-sets them: a writer that moved a head in
    between makes it raise ConcurrencyConflict, and the round's transaction rolls back)."""
    if not fresh:
        return {}
    streams = sorted({risk_stream_id(o.risk_scored.driver_id) for o in fresh})
    heads = {r["stream_id"]: r["version"] for r in await conn.fetch(STREAM_HEADS, streams)}
    rows: dict[uuid.UUID, StoredRiskEvent] = {}
    events: list[NewEvent] = []
    for outcome in fresh:
        stream = risk_stream_id(outcome.risk_scored.driver_id)
        for event in outcome.events():
            heads[stream] = heads.get(stream, 0) + 1
            row = StoredRiskEvent(event.event_id, event_type(event), heads[stream], event.occurred_at_ms,
                                  encode_event(event))  # fmt: skip
            rows[row.event_id] = row
            events.append(NewEvent(row.event_id, stream, row.stream_version, row.event_type, row.occurred_at_ms,
                                   row.payload_json, UNKNOWN_SEQ))  # fmt: skip
    inserted, _skipped = await append_events(conn, events)
    if inserted != len(events):
        raise RuntimeError(f"risk streams: {inserted} of {len(events)} fresh events appended")
    return rows


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
