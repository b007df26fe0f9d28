"""The ClaimStore contract, with the event store that opens claims: run on the fakes (tests/unit/test_claims.py)
and on PostgreSQL (tests/integration/test_claims.py). A backend fixture gives `(event_store, claim_store)`."""

from __future__ import annotations

import secrets
import uuid
from datetime import UTC, datetime

import msgspec
import pytest

from domain.batches import NewEvent
from domain.claims import claim_id
from domain.events import CrashDetected, CrashSample
from tests.contracts.event_store_builders import T0_MS, batch

DECIDED_AT = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def crash_event(driver_id: str, version: int, at_ms: int = T0_MS, *, located: bool = True) -> NewEvent:
    """A `crash_detected` as the shard appends it: 30 readings before and after the impact (1 Hz)."""
    samples = [CrashSample(at_ms + k * 1000, 52.5, 13.4, 40.0 - k if k < 0 else 0.0, -3.0, 90.0)
               for k in range(-30, 31) if k]
    crash = CrashDetected(
        event_id=uuid.uuid4(), driver_id=driver_id, trip_id=uuid.uuid4(), occurred_at_ms=at_ms, peak_g=3.1,
        trigger="acceleration", lat=52.5, lon=13.4, speed_kmh=41.0, pre=samples[:30], post=samples[30:],
    )
    payload = msgspec.json.encode(crash)
    if not located:  # what a driver whose positions are not kept sends: no location anywhere
        raw = msgspec.json.decode(payload)
        raw.update(lat=None, lon=None, pre=[[s[0], None, None, *s[3:]] for s in raw["pre"]],
                   post=[[s[0], None, None, *s[3:]] for s in raw["post"]])
        payload = msgspec.json.encode(raw)
    return NewEvent(crash.event_id, driver_id, version, "crash_detected", at_ms, payload, version)


@pytest.fixture
def cid() -> str:
    return secrets.token_hex(4)


async def test_a_crash_opens_one_claim_with_the_30_s_either_side_and_a_repeat_opens_none(claims_backend, cid):
    events, claims = claims_backend
    driver = f"c-{cid}"
    crash = crash_event(driver, 1)
    first = await events.write_batch(batch(f"g-{cid}", events=[crash]))
    again = await events.write_batch(batch(f"g-{cid}", events=[crash]))  # a retried batch, a replay
    assert (first.claims_opened, again.claims_opened) == (1, 0)
    total, rows = await claims.list_claims(status=None, driver_id=driver, limit=10, offset=0)
    assert total == 1 and rows[0]["claim_id"] == claim_id(crash.event_id) and rows[0]["status"] == "open"
    assert "readings" not in rows[0]
    claim = await claims.claim(claim_id(crash.event_id))
    assert claim["crash_event_id"] == crash.event_id and claim["driver_id"] == driver
    assert (claim["lat"], claim["lon"], claim["speed_kmh"], claim["peak_g"]) == (52.5, 13.4, 41.0, 3.1)
    assert claim["occurred_at"] == datetime.fromtimestamp(T0_MS / 1000, UTC)
    offsets = [r["offset_s"] for r in claim["readings"]]
    assert offsets == [float(k) for k in range(-30, 31) if k]
    assert claim["readings"][0]["speed_kmh"] == 70.0 and claim["readings"][-1]["lat"] == 52.5


async def test_a_crash_without_a_location_opens_a_claim_without_one(claims_backend, cid):
    events, claims = claims_backend
    crash = crash_event(f"c-{cid}", 1, located=False)
    assert (await events.write_batch(batch(f"g-{cid}", events=[crash]))).claims_opened == 1
    claim = await claims.claim(claim_id(crash.event_id))
    assert claim["lat"] is None and claim["lon"] is None and claim["speed_kmh"] == 41.0
    assert all(r["lat"] is None and r["lon"] is None for r in claim["readings"])


async def test_the_list_is_newest_first_filtered_by_status_and_driver_and_paged(claims_backend, cid):
    events, claims = claims_backend
    a, b = f"c-{cid}-a", f"c-{cid}-b"
    crashes = [crash_event(a, 1, T0_MS), crash_event(a, 2, T0_MS + 60_000), crash_event(b, 1, T0_MS + 30_000)]
    await events.write_batch(batch(f"g-{cid}", events=crashes))
    total, rows = await claims.list_claims(status=None, driver_id=a, limit=1, offset=0)
    assert total == 2 and [r["claim_id"] for r in rows] == [claim_id(crashes[1].event_id)]
    _, rest = await claims.list_claims(status=None, driver_id=a, limit=1, offset=1)
    assert [r["claim_id"] for r in rest] == [claim_id(crashes[0].event_id)]
    await claims.record_decision(claim_id(crashes[0].event_id), status="rejected", decided_by=None, note=None,
                                 decided_at=DECIDED_AT)
    total, rows = await claims.list_claims(status="open", driver_id=a, limit=10, offset=0)
    assert total == 1 and rows[0]["claim_id"] == claim_id(crashes[1].event_id)
    total, _ = await claims.list_claims(status="rejected", driver_id=b, limit=10, offset=0)
    assert total == 0


async def test_a_decision_is_recorded_once_and_survives_a_replayed_crash(claims_backend, cid):
    events, claims = claims_backend
    crash = crash_event(f"c-{cid}", 1)
    await events.write_batch(batch(f"g-{cid}", events=[crash]))
    claim = claim_id(crash.event_id)
    user = uuid.uuid4()
    decided = await claims.record_decision(claim, status="confirmed", decided_by=user, note="rear-ended at a light",
                                           decided_at=DECIDED_AT)
    assert (decided["status"], decided["decided_by"], decided["note"]) == ("confirmed", user, "rear-ended at a light")
    assert decided["decided_at"] == DECIDED_AT
    assert await claims.record_decision(claim, status="rejected", decided_by=user, note=None,
                                        decided_at=DECIDED_AT) is None
    await events.write_batch(batch(f"g-{cid}", events=[crash]))
    assert (await claims.claim(claim))["status"] == "confirmed"


async def test_an_unknown_claim_is_none_to_read_and_to_decide(claims_backend):
    _, claims = claims_backend
    unknown = uuid.uuid4()
    assert await claims.claim(unknown) is None
    assert await claims.record_decision(unknown, status="confirmed", decided_by=None, note=None,
                                        decided_at=DECIDED_AT) is None
