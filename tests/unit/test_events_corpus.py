"""Historical event payloads must keep decoding: events only grow (house habit 3).

`corpus/<type>.json` holds a JSON array of payloads as they were written, oldest first. Append new
shapes; never edit or delete old ones. A payload that stops decoding means a breaking change: add a
new tag plus an upcaster instead.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import msgspec
import pytest

from domain.events import (
    EVENT_TYPES,
    DomainEventBase,
    TripEnded,
    decode_event,
    decode_events,
    encode_event,
    encode_events,
    event_type,
)
from domain.trip_summary import harsh_by_grade

CORPUS = Path(__file__).parent / "corpus"
FILES = sorted(CORPUS.glob("*.json"))


def test_every_event_type_has_a_corpus_file():
    assert {f.stem for f in FILES} == set(EVENT_TYPES)


@pytest.mark.parametrize("path", FILES, ids=[f.stem for f in FILES])
def test_every_historical_payload_still_decodes(path):
    payloads = json.loads(path.read_text())
    assert payloads, f"{path.name} is empty"
    for payload in payloads:
        event = decode_event(json.dumps(payload))
        assert isinstance(event, EVENT_TYPES[path.stem])
        assert event_type(event) == path.stem == payload["type"]
        assert isinstance(event.event_id, uuid.UUID) and event.driver_id and event.occurred_at_ms > 0
        again = encode_event(event)
        assert decode_event(again) == event
        assert json.loads(again)["type"] == path.stem


def test_defaults_fill_fields_that_older_payloads_lack():
    payloads = json.loads((CORPUS / "trip_ended.json").read_text())
    minimal = next(p for p in payloads if "harsh_braking_count" not in p["summary"])
    oldest_minimal = decode_event(json.dumps(minimal))
    assert isinstance(oldest_minimal, TripEnded)
    assert oldest_minimal.summary.harsh_braking_count == 0
    assert oldest_minimal.summary.end_reason == "ignition_off"


def test_harsh_events_written_before_grades_decode_as_medium_and_their_trips_count_them_medium():
    for tag in ("harsh_braking_detected", "harsh_acceleration_detected", "harsh_cornering_detected"):
        payloads = json.loads((CORPUS / f"{tag}.json").read_text())
        old = [decode_event(json.dumps(p)) for p in payloads if "grade" not in p]
        assert old and all(e.grade == "medium" for e in old)
    trips = json.loads((CORPUS / "trip_ended.json").read_text())
    before = decode_event(json.dumps(next(p for p in trips if "harsh_braking_high_count" not in p["summary"]
                                          and "harsh_braking_count" in p["summary"])))
    assert harsh_by_grade(before.summary)["braking"] == {"low": 0, "medium": 2, "high": 0}
    after = decode_event(json.dumps(next(p for p in trips if "harsh_braking_high_count" in p["summary"])))
    assert harsh_by_grade(after.summary)["braking"] == {"low": 4, "medium": 2, "high": 1}


def test_events_encode_deterministically_and_as_a_list():
    events = [decode_event(json.dumps(json.loads(f.read_text())[0])) for f in FILES]
    blob = encode_events(events)
    assert decode_events(blob) == events
    assert [encode_event(e) for e in decode_events(blob)] == [encode_event(e) for e in events]


def test_events_are_immutable():
    event = decode_event(json.dumps(json.loads((CORPUS / "trip_started.json").read_text())[0]))
    assert isinstance(event, DomainEventBase)
    with pytest.raises(AttributeError):
        event.driver_id = "someone-else"  # type: ignore[misc]


def test_an_unknown_type_is_refused():
    with pytest.raises(msgspec.ValidationError):
        decode_event(b'{"type": "trip_teleported", "event_id": "0b5f8d3e-6a8e-4c3e-9d7e-1e2f3a4b5c6d"}')
