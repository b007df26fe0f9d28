"""The premium ledger's table (`premium_ledger`, migration 0013): written with the risk events it derives from,
read by page, rebuilt from the log. SQL only; the fold is domain.premium_ledger.

`write_ledger` runs inside the caller's transaction (the scorer's `write_scores`, a dispute decision), right after
the events were appended: it reads each driver's last entry (its model version is the fold's state), folds the
fresh events and inserts the entries, keyed by event id (a retry writes nothing). `stream_ledger` folds a driver's
whole risk stream from `domain_events`: what a replay of the log gives, compared with the table in the tests.
"""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from domain.events import decode_event
from domain.premium_ledger import LedgerEntry, LedgerState, fold_ledger, ledger_of
from domain.scoring import risk_stream_id
from storage.postgres.event_store_sql import ms_to_ts, ts_to_ms
from storage.postgres.pool import plain

LEDGER_COLUMNS = ("entry_id", "driver_id", "stream_version", "policy_id", "occurred_at_ms", "cause", "trip_id",
                  "dispute_id", "model_version", "feature_hash", "rules_version", "score", "band",
                  "previous_premium", "premium", "currency", "cap_applied", "clamp_applied")

LAST_MODEL_VERSIONS = """
SELECT DISTINCT ON (driver_id) driver_id, model_version FROM premium_ledger
WHERE driver_id = ANY($1::text[]) ORDER BY driver_id, stream_version DESC
"""

INSERT_LEDGER = f"""
INSERT INTO premium_ledger (entry_id, driver_id, stream_version, policy_id, occurred_at, cause, trip_id, dispute_id,
                            model_version, feature_hash, rules_version, score, band, previous_premium, premium,
                            currency, cap_applied, clamp_applied)
SELECT l.entry_id, l.driver_id, l.stream_version, l.policy_id, {ms_to_ts("l.occurred_at_ms")}, l.cause, l.trip_id,
       l.dispute_id, l.model_version, l.feature_hash, l.rules_version, l.score, l.band, l.previous_premium, l.premium,
       l.currency, l.cap_applied, l.clamp_applied
FROM unnest($1::uuid[], $2::text[], $3::bigint[], $4::uuid[], $5::bigint[], $6::text[], $7::uuid[], $8::uuid[],
            $9::text[], $10::text[], $11::text[], $12::float8[], $13::text[], $14::numeric[], $15::numeric[],
            $16::text[], $17::bool[], $18::bool[])
     AS l({", ".join(LEDGER_COLUMNS)})
ORDER BY l.driver_id, l.stream_version
ON CONFLICT (entry_id) DO NOTHING
"""

_SELECT = f"""SELECT entry_id, driver_id, stream_version, policy_id, {ts_to_ms("occurred_at")} AS occurred_at_ms, cause,
       trip_id, dispute_id, model_version, feature_hash, rules_version, score::float8 AS score, band, previous_premium,
       premium, rtrim(currency) AS currency, cap_applied, clamp_applied FROM premium_ledger"""
LEDGER_PAGE = f"{_SELECT} WHERE driver_id = $1 ORDER BY stream_version DESC LIMIT $2 OFFSET $3"
LEDGER_ALL = f"{_SELECT} WHERE driver_id = $1 ORDER BY stream_version"
LEDGER_COUNT = "SELECT count(*) FROM premium_ledger WHERE driver_id = $1"

RISK_STREAM = "SELECT stream_version, payload::text AS payload FROM domain_events WHERE stream_id = $1 " \
              "ORDER BY stream_version"


async def write_ledger(conn: asyncpg.Connection, events: Sequence[tuple[int, object]]) -> int:
    """Fold freshly appended risk events ((stream version, event), each driver's in version order) into ledger
    entries after each driver's last one, and insert them. Returns how many were inserted."""
    if not events:
        return 0
    drivers = sorted({e.driver_id for _, e in events})  # type: ignore[attr-defined]
    last = {r["driver_id"]: r["model_version"] for r in await conn.fetch(LAST_MODEL_VERSIONS, drivers)}
    entries: list[LedgerEntry] = []
    for driver in drivers:
        mine = [(v, e) for v, e in events if e.driver_id == driver]  # type: ignore[attr-defined]
        entries += fold_ledger(LedgerState(last_model_version=last.get(driver)), mine)[1]  # type: ignore[arg-type]
    if not entries:
        return 0
    status = await conn.execute(INSERT_LEDGER, *[[getattr(e, c) for e in entries] for c in LEDGER_COLUMNS])
    return int(status.rsplit(" ", 1)[1])


def entry_of(row: asyncpg.Record) -> LedgerEntry:
    return LedgerEntry(**{c: plain(row[c]) for c in LEDGER_COLUMNS})


async def ledger_page(conn: asyncpg.Connection, driver_id: str, limit: int, offset: int
                      ) -> tuple[int, list[LedgerEntry]]:
    """The total and a page of a driver's entries, newest first."""
    total = await conn.fetchval(LEDGER_COUNT, driver_id)
    return total, [entry_of(r) for r in await conn.fetch(LEDGER_PAGE, driver_id, limit, offset)]


async def stored_ledger(conn: asyncpg.Connection, driver_id: str) -> list[LedgerEntry]:
    """The table's entries of a driver, oldest first."""
    return [entry_of(r) for r in await conn.fetch(LEDGER_ALL, driver_id)]


async def stream_ledger(conn: asyncpg.Connection, driver_id: str) -> list[LedgerEntry]:
    """The ledger a replay of the driver's risk stream gives (domain.premium_ledger.ledger_of over the log)."""
    rows = await conn.fetch(RISK_STREAM, risk_stream_id(driver_id))
    return ledger_of((r["stream_version"], decode_event(r["payload"])) for r in rows)
