"""PostgreSQL side of disputes: the DisputeStore port (usecases/ports/dispute_store.py). SQL only (asyncpg).

Dispute events go to the driver's risk stream through the event store's append (heads locked, compare-and-set,
storage.postgres.event_store.append_events); the scorer appends there too, so a write that loses the race raises
ConcurrencyConflict and is retried by the use case. A decision is ONE transaction: the dispute row locked and
still open, the policy locked and still at the premium the re-score started from (else StalePolicy), the events,
the dispute row, the trip's summary without the episode, the re-score's `risk_scores` row, the policy, the ledger.
"""

from __future__ import annotations

import uuid

import asyncpg
import msgspec

from domain.batches import NewEvent
from domain.disputes import dispute_event_id
from domain.events import DisputeDecided, DisputeOpened, DisputeRescored, DomainEvent, decode_event, encode_event
from domain.premium_ledger import LedgerEntry
from domain.scoring import UNKNOWN_SEQ, risk_stream_id, window_start_ms
from domain.trip_episodes import EPISODE_TAGS
from domain.trip_summary import TripSummary
from storage.postgres.event_store import append_events, trip_summary_of
from storage.postgres.event_store_sql import ms_to_ts, ts_to_ms
from storage.postgres.partitions import PartitionCache, ensure_for_timestamps
from storage.postgres.policies import active_policies, policy_terms
from storage.postgres.pool import plain
from storage.postgres.premium_ledger import ledger_page, write_ledger
from storage.postgres.score_store import LOAD_WINDOWS, TRIP_SELECT, explanation_json
from usecases.ports.dispute_store import DisputeRecord, RescoreInputs
from usecases.ports.score_store import StalePolicy

# The episode by its primary key's first half; `trip_id` in its payload ties it to the trip (and so the driver).
TRIP_EPISODE = """
SELECT t.driver_id, e.payload::text AS payload
FROM trips t
LEFT JOIN domain_events e ON e.event_id = $2 AND e.stream_id = t.driver_id AND e.occurred_at >= t.start_time
                         AND e.event_type = ANY($3::text[]) AND e.payload->>'trip_id' = t.trip_id::text
WHERE t.trip_id = $1
"""

INSERT_DISPUTE = f"""
INSERT INTO disputes (dispute_id, driver_id, trip_id, episode_id, episode_type, reason, opened_by, opened_at,
                      adjustment)
VALUES ($1, $2, $3, $4, $5, $6, $7, {ms_to_ts("$8::bigint")}, $9::text::jsonb)
ON CONFLICT DO NOTHING
"""

_DISPUTE_SELECT = f"""
SELECT d.dispute_id, d.driver_id, d.trip_id, d.episode_id, d.episode_type, d.reason, d.opened_by,
       {ts_to_ms("d.opened_at")} AS opened_at_ms, d.adjustment::text AS adjustment, d.status, d.note, d.decided_by,
       {ts_to_ms("d.decided_at")} AS decided_at_ms
FROM disputes d"""
GET_DISPUTE = f"{_DISPUTE_SELECT} WHERE d.dispute_id = $1"
PAGE_DISPUTES = f"""{_DISPUTE_SELECT}
WHERE ($1::text IS NULL OR d.driver_id = $1) AND ($2::text IS NULL OR d.status = $2)
ORDER BY d.opened_at DESC, d.dispute_id
LIMIT $3 OFFSET $4
"""
COUNT_DISPUTES = """
SELECT count(*) FROM disputes d WHERE ($1::text IS NULL OR d.driver_id = $1) AND ($2::text IS NULL OR d.status = $2)
"""

ONE_TRIP = f"SELECT {TRIP_SELECT} FROM trips t WHERE t.trip_id = $1"
LOCK_DISPUTE = "SELECT status FROM disputes WHERE dispute_id = $1 FOR UPDATE"
LOCK_POLICY = "SELECT current_premium, status FROM policies WHERE policy_id = $1 FOR UPDATE"
STREAM_HEAD = "SELECT version FROM streams WHERE stream_id = $1"
LATEST_SCORE_END = f"""
SELECT {ts_to_ms("scored_at")} FROM risk_scores WHERE driver_id = $1 ORDER BY scored_at DESC, recorded_at DESC LIMIT 1
"""
DECIDE_DISPUTE = f"""
UPDATE disputes SET status = $2, note = $3, decided_by = $4, decided_at = {ms_to_ts("$5::bigint")}
WHERE dispute_id = $1 AND status = 'open'
"""
INSERT_RESCORE = f"""
INSERT INTO risk_scores (score_id, driver_id, scored_at, score, band, model_version, feature_hash, credibility,
                         trip_id, rules_version, explanation)
VALUES ($1, $2, {ms_to_ts("$3::bigint")}, $4, $5, $6, $7, $8, $9, $10, $11::text::jsonb)
ON CONFLICT (score_id) DO NOTHING
"""
UPDATE_POLICY = """
UPDATE policies SET current_premium = $2, last_score = $3, last_band = $4, updated_at = now() WHERE policy_id = $1
"""
# What an accepted dispute may take from a trip (domain.disputes.episode_adjustment): a fixed list, never input.
ADJUSTABLE = ("harsh_braking_count", "harsh_braking_high_count", "harsh_acceleration_count",
              "harsh_acceleration_high_count", "harsh_cornering_count", "harsh_cornering_high_count",
              "speeding_moderate_s", "speeding_severe_s")
UPDATE_TRIP = (f"UPDATE trips SET {', '.join(f'{c} = ${i}' for i, c in enumerate(ADJUSTABLE, start=2))} "
               "WHERE trip_id = $1")


class PostgresDisputeStore:
    """The DisputeStore port on PostgreSQL. Cheap to construct; holds no connection of its own."""

    def __init__(self, pool: asyncpg.Pool, partitions: PartitionCache | None = None) -> None:
        self._pool = pool
        self._partitions = partitions if partitions is not None else PartitionCache()

    async def trip_episode(self, trip_id: uuid.UUID, episode_id: uuid.UUID) -> tuple[str, DomainEvent | None] | None:
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow(TRIP_EPISODE, trip_id, episode_id, list(EPISODE_TAGS))
        if row is None:
            return None
        return row["driver_id"], None if row["payload"] is None else decode_event(row["payload"])

    async def open(self, event: DisputeOpened) -> bool:
        async with self._pool.acquire() as conn:
            await ensure_for_timestamps(conn, "domain_events", [event.occurred_at_ms], self._partitions)
            async with conn.transaction():
                status = await conn.execute(
                    INSERT_DISPUTE, event.dispute_id, event.driver_id, event.trip_id, event.episode_id,
                    event.episode_type, event.reason, event.opened_by, event.occurred_at_ms,
                    msgspec.json.encode(event.adjustment).decode())
                if status.endswith(" 0"):
                    return False
                await _append(conn, [event])
        return True

    async def get(self, dispute_id: uuid.UUID) -> DisputeRecord | None:
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow(GET_DISPUTE, dispute_id)
        return None if row is None else _record(row)

    async def page(self, driver_id: str | None, status: str | None, limit: int, offset: int
                   ) -> tuple[int, list[DisputeRecord]]:
        async with self._pool.acquire() as conn:
            total = await conn.fetchval(COUNT_DISPUTES, driver_id, status)
            rows = await conn.fetch(PAGE_DISPUTES, driver_id, status, limit, offset)
        return total, [_record(r) for r in rows]

    async def rescore_inputs(self, driver_id: str, trip_id: uuid.UUID, window_days: float) -> RescoreInputs:
        async with self._pool.acquire() as conn:
            disputed = await conn.fetchrow(ONE_TRIP, trip_id)
            end_ms = await conn.fetchval(LATEST_SCORE_END, driver_id)
            policy_rows = await active_policies(conn, [driver_id])
            trips = []
            if end_ms is not None:
                rows = await conn.fetch(LOAD_WINDOWS, [driver_id], [window_start_ms(end_ms, window_days)], [end_ms])
                trips = [trip_summary_of(r) for r in rows]
        row = policy_rows.get(driver_id)
        policy = None if row is None else policy_terms(row)
        return RescoreInputs(None if disputed is None else trip_summary_of(disputed), end_ms, trips, policy)

    async def decide(self, decided: DisputeDecided, rescored: DisputeRescored | None,
                     adjusted_trip: TripSummary | None) -> bool:
        async with self._pool.acquire() as conn:
            await ensure_for_timestamps(conn, "domain_events", [decided.occurred_at_ms], self._partitions)
            async with conn.transaction():
                if await conn.fetchval(LOCK_DISPUTE, decided.dispute_id) != "open":
                    return False
                if rescored is not None and rescored.policy_id is not None:
                    policy = await conn.fetchrow(LOCK_POLICY, rescored.policy_id)
                    held = None if policy is None or policy["current_premium"] <= 0 else policy["current_premium"]
                    if policy is None or policy["status"] != "active" or held != rescored.previous_premium:
                        raise StalePolicy(f"the policy of {decided.driver_id} changed while re-scoring")
                events: list = [decided] if rescored is None else [decided, rescored]
                versions = await _append(conn, events)
                await conn.execute(DECIDE_DISPUTE, decided.dispute_id, decided.decision, decided.note,
                                   decided.decided_by, decided.occurred_at_ms)
                if adjusted_trip is not None:
                    await conn.execute(UPDATE_TRIP, adjusted_trip.trip_id,
                                       *[getattr(adjusted_trip, c) for c in ADJUSTABLE])
                if rescored is not None:
                    await _write_rescore(conn, rescored)
                    await write_ledger(conn, list(zip(versions, events, strict=True)))
        return True

    async def ledger(self, driver_id: str, limit: int, offset: int) -> tuple[int, list[LedgerEntry]]:
        async with self._pool.acquire() as conn:
            return await ledger_page(conn, driver_id, limit, offset)


async def _append(conn: asyncpg.Connection, events: list) -> list[int]:
    """Append `events` (one driver's) after its risk stream's head; their stream versions."""
    stream = risk_stream_id(events[0].driver_id)
    head = await conn.fetchval(STREAM_HEAD, stream) or 0
    rows = [NewEvent(e.event_id, stream, head + i, type(e).__struct_config__.tag, e.occurred_at_ms,
                     encode_event(e), UNKNOWN_SEQ) for i, e in enumerate(events, start=1)]
    await append_events(conn, rows)
    return [r.stream_version for r in rows]


async def _write_rescore(conn: asyncpg.Connection, r: DisputeRescored) -> None:
    explanation = explanation_json(r, dispute_id=r.dispute_id).decode()
    await conn.execute(INSERT_RESCORE, r.event_id, r.driver_id, r.window_end_ms, r.score, r.band, r.model_version,
                       r.feature_hash, r.credibility, r.trip_id, r.rules_version, explanation)
    if r.policy_id is not None:
        await conn.execute(UPDATE_POLICY, r.policy_id, r.premium, r.score, r.band)


def _record(row: asyncpg.Record) -> DisputeRecord:
    """The row as its `dispute_opened` event (every field of the event is a column) and its decision."""
    ident = plain(row["dispute_id"])
    opened = DisputeOpened(
        event_id=dispute_event_id("dispute_opened", ident), driver_id=row["driver_id"], trip_id=plain(row["trip_id"]),
        occurred_at_ms=row["opened_at_ms"], dispute_id=ident, episode_id=plain(row["episode_id"]),
        episode_type=row["episode_type"], reason=row["reason"], opened_by=row["opened_by"],
        adjustment=msgspec.json.decode(row["adjustment"]))
    return DisputeRecord(opened, row["status"], row["note"], row["decided_by"], row["decided_at_ms"])
