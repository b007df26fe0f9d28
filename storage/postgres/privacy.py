"""PostgresPrivacyStore: the PrivacyStore port over the `privacy:{id}` streams (appended through the event store's
`append_events`) and their read models driver_privacy / private_trips (migrations/0012). SQL only.

Erasure (docs/PRIVACY.md §4) runs in the transaction that records `driver_erased`: the profile is pseudonymised in
place (the row stays: policies, trips and scores refer to the driver id, an opaque key), the raw readings and the
snapshots (which hold the last positions) are deleted in every monthly partition, and the positions inside the
driver's trip-stream payloads are overwritten (0, 0 and no crash samples, flagged `positions_withheld`) so the
events still decode and keep every audit-relevant field.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

import asyncpg

from config.settings import Settings
from domain.batches import NewEvent
from domain.events import DriverErased, encode_event, event_type
from domain.privacy import PrivacyEvent, PrivacyState, fold, privacy_stream_id
from domain.scoring import UNKNOWN_SEQ
from storage.postgres.event_store import append_events
from storage.postgres.pool import acquire
from usecases.ports.privacy_store import Scrubbed

STATE = """
SELECT d.driver_id, p.mode, p.version, p.erased_at IS NOT NULL AS erased,
       ARRAY(SELECT trip_id FROM private_trips t WHERE t.driver_id = d.driver_id) AS private_trips
FROM drivers d LEFT JOIN driver_privacy p ON p.driver_id = d.driver_id
WHERE d.driver_id = $1
"""

WITHHELD = """
SELECT p.driver_id, p.mode, p.version, p.erased_at IS NOT NULL AS erased,
       ARRAY(SELECT trip_id FROM private_trips t WHERE t.driver_id = p.driver_id) AS private_trips
FROM driver_privacy p
WHERE p.mode <> 'full' OR p.erased_at IS NOT NULL
   OR EXISTS (SELECT 1 FROM private_trips t WHERE t.driver_id = p.driver_id)
"""

UPSERT_STATE = """
INSERT INTO driver_privacy AS p (driver_id, mode, version, changed_at, changed_by, erased_at)
VALUES ($1, $2, $3, to_timestamp($4 / 1000.0), $5, CASE WHEN $6 THEN to_timestamp($4 / 1000.0) END)
ON CONFLICT (driver_id) DO UPDATE SET mode = EXCLUDED.mode, version = EXCLUDED.version,
    changed_at = EXCLUDED.changed_at, changed_by = EXCLUDED.changed_by,
    erased_at = coalesce(p.erased_at, EXCLUDED.erased_at)
"""

MARK_TRIP = """
INSERT INTO private_trips (trip_id, driver_id, marked_at, marked_by) VALUES ($1, $2, to_timestamp($3 / 1000.0), $4)
ON CONFLICT (trip_id) DO NOTHING
"""

PSEUDONYMISE = """
UPDATE drivers SET first_name = 'erased', last_name = $2, email = $2 || '@erased.invalid', phone = NULL,
       license_number = NULL, date_of_birth = NULL, is_active = false, updated_at = now()
WHERE driver_id = $1
"""

# Positions inside payloads: trip_started / harsh episodes / crash carry lat, lon; a crash its pre/post samples.
# Overwritten (not removed) so every payload still decodes as its type; the flag says they are not real.
SCRUB_EVENTS = """
UPDATE domain_events SET payload = payload
    || jsonb_build_object('lat', 0.0, 'lon', 0.0, 'positions_withheld', true)
    || CASE WHEN payload ? 'pre' THEN jsonb_build_object('pre', '[]'::jsonb, 'post', '[]'::jsonb) ELSE '{}' END
WHERE stream_id = $1 AND payload ? 'lat' AND NOT payload ? 'positions_withheld'
"""

# A claim keeps its times, speeds and forces (the insurer's record of a loss); where it happened goes.
SCRUB_CLAIMS = """
UPDATE claims SET lat = NULL, lon = NULL, readings = (
    SELECT coalesce(jsonb_agg(r || '{"lat": null, "lon": null, "heading": null}'::jsonb ORDER BY n), '[]'::jsonb)
    FROM jsonb_array_elements(readings) WITH ORDINALITY AS e(r, n))
WHERE driver_id = $1
"""


def _state(row: asyncpg.Record) -> PrivacyState:
    return PrivacyState(driver_id=row["driver_id"], mode=row["mode"] or "full", version=row["version"] or 0,
                        erased=bool(row["erased"]), private_trips=frozenset(row["private_trips"] or ()))


def _rowcount(status: str) -> int:
    return int(status.rsplit(" ", 1)[-1])


class PostgresPrivacyStore:
    def __init__(self, pool: asyncpg.Pool, settings: Settings) -> None:
        self.pool = pool
        self.settings = settings

    async def state(self, driver_id: str) -> PrivacyState | None:
        async with acquire(self.pool, self.settings) as conn:
            row = await conn.fetchrow(STATE, driver_id)
        return None if row is None else _state(row)

    async def trip_owner(self, trip_id: uuid.UUID) -> str | None:
        async with acquire(self.pool, self.settings) as conn:
            return await conn.fetchval("SELECT driver_id FROM trips WHERE trip_id = $1", trip_id)

    async def record(self, state: PrivacyState, event: PrivacyEvent) -> PrivacyState:
        async with acquire(self.pool, self.settings) as conn, conn.transaction():
            return await _record(conn, state, event)

    async def erase(self, state: PrivacyState, pseudonym: str, event: Callable[[Scrubbed], DriverErased]) -> Scrubbed:
        driver_id = state.driver_id
        async with acquire(self.pool, self.settings) as conn, conn.transaction():
            await conn.execute(PSEUDONYMISE, driver_id, pseudonym)
            readings = _rowcount(await conn.execute("DELETE FROM telematics_events WHERE driver_id = $1", driver_id))
            snapshots = _rowcount(await conn.execute("DELETE FROM driver_snapshots WHERE driver_id = $1", driver_id))
            events = _rowcount(await conn.execute(SCRUB_EVENTS, driver_id))
            await conn.execute(SCRUB_CLAIMS, driver_id)
            scrubbed = Scrubbed(readings=readings, events=events, snapshots=snapshots)
            await _record(conn, state, event(scrubbed))
        return scrubbed

    async def withheld(self) -> list[PrivacyState]:
        async with acquire(self.pool, self.settings) as conn:
            return [_state(r) for r in await conn.fetch(WITHHELD)]


async def _record(conn: asyncpg.Connection, state: PrivacyState, event: PrivacyEvent) -> PrivacyState:
    new = fold(state, event)
    await append_events(conn, [NewEvent(event.event_id, privacy_stream_id(state.driver_id), new.version,
                                        event_type(event), event.occurred_at_ms, encode_event(event), UNKNOWN_SEQ)])
    by = getattr(event, "changed_by", None) or getattr(event, "marked_by", None) or getattr(event, "erased_by", "")
    await conn.execute(UPSERT_STATE, state.driver_id, new.mode, new.version, event.occurred_at_ms, by, new.erased)
    if event.trip_id is not None and event_type(event) == "trip_marked_private":
        await conn.execute(MARK_TRIP, event.trip_id, state.driver_id, event.occurred_at_ms, by)
    return new
