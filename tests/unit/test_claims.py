"""First notice of loss: the claim a crash opens (pure), the ClaimStore contract on the fakes, and the use case's
answers (own claim only, once)."""

from __future__ import annotations

import uuid

import msgspec
import pytest

from domain.claims import ClaimTransitionError, claim_id, claims_opened, decide
from storage.memory.claims import InMemoryClaimStore
from storage.memory.event_store import InMemoryEventStore
from tests.contracts.claims_contract import *  # noqa: F403 - the contract's tests and the `cid` fixture
from tests.contracts.claims_contract import crash_event
from tests.contracts.event_store_builders import batch, event
from usecases.claims import ClaimNotFound, Claims, NotClaimant
from usecases.ports.clock import FakeClock


@pytest.fixture
def claims_backend() -> tuple[InMemoryEventStore, InMemoryClaimStore]:
    events = InMemoryEventStore()
    return events, InMemoryClaimStore(events)


def test_a_crash_names_the_same_claim_whenever_it_is_replayed():
    crash = crash_event("d1", 1)
    assert claim_id(crash.event_id) == claim_id(uuid.UUID(str(crash.event_id)))
    assert claim_id(crash.event_id) != claim_id(uuid.uuid4())
    again = claims_opened([crash])[0]
    assert claims_opened([crash])[0] == again and again.claim_id == claim_id(crash.event_id)


def test_only_crashes_open_claims_in_event_order():
    crashes = [crash_event("d1", 2), crash_event("d1", 4)]
    opened = claims_opened([event("d1", 1), crashes[0], event("d1", 3), crashes[1]])
    assert [o.crash_event_id for o in opened] == [c.event_id for c in crashes]


def test_readings_are_in_time_order_relative_to_the_impact():
    opened = claims_opened([crash_event("d1", 1)])[0]
    assert [r.offset_s for r in opened.readings] == sorted(r.offset_s for r in opened.readings)
    assert len(opened.readings) == 60 and opened.readings[0].offset_s == -30.0 and opened.readings[-1].offset_s == 30.0


def test_a_non_finite_location_counts_as_unknown():
    crash = crash_event("d1", 1)
    raw = msgspec.json.decode(crash.payload_json)
    raw["lat"] = None
    payload = msgspec.json.encode(raw)
    opened = claims_opened([msgspec.structs.replace(crash, payload_json=payload)])[0]
    assert opened.lat is None and opened.lon is None  # half a location is no location


@pytest.mark.parametrize(("confirmed", "status"), [(True, "confirmed"), (False, "rejected")])
def test_an_open_claim_is_confirmed_or_rejected(confirmed, status):
    assert decide("open", confirmed) == status


@pytest.mark.parametrize("status", ["confirmed", "rejected"])
def test_a_decided_claim_cannot_be_answered_again(status):
    with pytest.raises(ClaimTransitionError, match=f"claim is {status} already"):
        decide(status, True)


async def _opened(backend, driver: str = "d1") -> uuid.UUID:
    events, _ = backend
    crash = crash_event(driver, 1)
    await events.write_batch(batch("g", events=[crash]))
    return claim_id(crash.event_id)


async def test_the_claims_driver_answers_once_and_the_second_answer_is_refused(claims_backend):
    claim = await _opened(claims_backend)
    use = Claims(claims_backend[1], FakeClock())
    user = uuid.uuid4()
    row = await use.answer(claim, driver_id="d1", user_id=user, confirmed=True, note="yes",
                           may_read=lambda d: d == "d1")
    assert row["status"] == "confirmed" and row["decided_by"] == user and row["decided_at"] is not None
    with pytest.raises(ClaimTransitionError):
        await use.answer(claim, driver_id="d1", user_id=user, confirmed=False, note=None, may_read=lambda d: True)


async def test_another_driver_gets_not_found_and_an_admin_may_read_but_not_answer(claims_backend):
    claim = await _opened(claims_backend)
    use = Claims(claims_backend[1], FakeClock())
    with pytest.raises(ClaimNotFound):
        await use.answer(claim, driver_id="d2", user_id=None, confirmed=True, note=None, may_read=lambda d: d == "d2")
    assert (await use.claim(claim, lambda d: True))["driver_id"] == "d1"
    with pytest.raises(NotClaimant):
        await use.answer(claim, driver_id=None, user_id=None, confirmed=True, note=None, may_read=lambda d: True)
    assert (await use.claim(claim, lambda d: True))["status"] == "open"
