"""The pure half of storage.redis.projections: which live messages a batch makes, in which order, in which shape."""

from __future__ import annotations

import uuid

import msgspec

from domain.batches import LivePosition, NewEvent, ShardOutput
from domain.events import HarshBrakingDetected, TripEnded, TripStarted, encode_event
from domain.trip_summary import TripSummary
from storage.redis.projections import fleet_payloads, invalidation_payload, message_order, plan_projection

TRIP = uuid.UUID("0190a0b0-0000-7000-8000-000000000001")


def _live(driver_id: str, seq: int, ts_ms: int = 1_767_225_600_000, trip_id: uuid.UUID | None = TRIP) -> LivePosition:
    return LivePosition(driver_id, seq, ts_ms, 52.520008, 13.404954, 48.5, 271.25, trip_id)


def _new(event, seq: int, version: int) -> NewEvent:
    tag = event.__struct_config__.tag
    return NewEvent(event.event_id, event.driver_id, version, tag, event.occurred_at_ms, encode_event(event), seq)


def _started(driver_id: str, at_ms: int) -> TripStarted:
    return TripStarted(event_id=uuid.uuid5(TRIP, f"s{driver_id}{at_ms}"), driver_id=driver_id, trip_id=TRIP,
                       occurred_at_ms=at_ms, start_reason="ignition_on", lat=52.5, lon=13.4)


def _harsh(driver_id: str, at_ms: int) -> HarshBrakingDetected:
    return HarshBrakingDetected(event_id=uuid.uuid5(TRIP, f"h{driver_id}{at_ms}"), driver_id=driver_id, trip_id=TRIP,
                                occurred_at_ms=at_ms, peak_mps2=4.2, duration_s=2.0, speed_at_start_kmh=61.0,
                                start_ms=at_ms - 2000, end_ms=at_ms, lat=52.5, lon=13.4)


def _ended(driver_id: str, at_ms: int, trip_id: uuid.UUID = TRIP) -> TripEnded:
    summary = TripSummary(trip_id=trip_id, driver_id=driver_id, start_ms=at_ms - 600_000, end_ms=at_ms,
                          distance_m=5400.0, duration_s=600.0, avg_speed_kmh=32.4, max_speed_kmh=71.0,
                          harsh_braking_count=1)
    return TripEnded(event_id=uuid.uuid5(trip_id, f"e{at_ms}"), driver_id=driver_id, trip_id=trip_id,
                     occurred_at_ms=at_ms, summary=summary)


def _decoded(plan) -> list[dict]:
    return [msgspec.json.decode(m) for d in plan.drivers for _, m in d.messages]


def test_a_position_message_carries_the_live_fields_and_seq():
    plan = plan_projection([ShardOutput(shard=0, live=[_live("d1", 41)])])
    assert _decoded(plan) == [{
        "type": "position", "driver_id": "d1", "seq": 41, "ts_ms": 1_767_225_600_000, "lat": 52.520008,
        "lon": 13.404954, "speed_kmh": 48.5, "heading": 271.25, "trip_id": str(TRIP),
    }]


def test_a_position_between_trips_has_a_null_trip_id():
    plan = plan_projection([ShardOutput(shard=0, live=[_live("d1", 41, trip_id=None)])])
    assert _decoded(plan)[0]["trip_id"] is None


def test_an_event_message_wraps_the_decoded_payload_with_envelope_fields():
    harsh = _harsh("d1", 1_767_225_601_000)
    plan = plan_projection([ShardOutput(shard=0, events=[_new(harsh, seq=40, version=7)])])
    (message,) = _decoded(plan)
    assert message == {
        "type": "harsh_braking_detected", "driver_id": "d1", "seq": 40, "ts_ms": 1_767_225_601_000,
        "event_id": str(harsh.event_id), "stream_version": 7, "payload": msgspec.json.decode(encode_event(harsh)),
    }
    assert list(message)[:4] == ["type", "driver_id", "seq", "ts_ms"]


def test_messages_are_ordered_by_seq_with_the_position_before_the_events_it_caused():
    t = 1_767_225_600_000
    events = [_new(_ended("d1", t + 9000), seq=50, version=3), _new(_started("d1", t), seq=10, version=1),
              _new(_harsh("d1", t + 5000), seq=50, version=2)]
    plan = plan_projection([ShardOutput(shard=0, events=events, live=[_live("d1", 50)])])
    assert [(m["seq"], m["type"]) for m in _decoded(plan)] == [
        (10, "trip_started"), (50, "position"), (50, "harsh_braking_detected"), (50, "trip_ended"),
    ]
    assert [seq for seq, _ in plan.drivers[0].messages] == [10, 50, 50, 50]


def test_drivers_are_sorted_and_the_plan_does_not_depend_on_shard_order():
    a = ShardOutput(shard=0, live=[_live("d2", 7)], events=[_new(_started("d2", 1_767_225_600_000), 7, 1)])
    b = ShardOutput(shard=1, live=[_live("d1", 9)])
    first, second = plan_projection([a, b]), plan_projection([b, a])
    assert [d.driver_id for d in first.drivers] == ["d1", "d2"]
    assert first == second


def test_a_batch_with_a_trip_ended_marks_the_driver_and_carries_the_summary_in_the_message():
    older_trip, newer_trip = uuid.uuid4(), uuid.uuid4()
    t = 1_767_225_600_000
    events = [_new(_ended("d1", t + 99_000, newer_trip), seq=90, version=4),
              _new(_ended("d1", t, older_trip), seq=30, version=2)]
    plan = plan_projection([ShardOutput(shard=0, events=events)])
    (update,) = plan.drivers
    assert update.cache_stale and plan.stale_drivers == 1
    summaries = [msgspec.json.decode(m)["payload"]["summary"] for _, m in update.messages]
    assert [msgspec.convert(s, TripSummary) for s in summaries] == [
        _ended("d1", t, older_trip).summary, _ended("d1", t + 99_000, newer_trip).summary]  # fmt: skip


def test_a_batch_without_trip_ended_marks_no_driver():
    plan = plan_projection([ShardOutput(shard=0, live=[_live("d1", 3)], events=[_new(_started("d1", 1_000), 2, 1)])])
    assert not plan.drivers[0].cache_stale and plan.stale_drivers == 0


def test_of_two_positions_for_one_driver_the_higher_seq_wins():
    plan = plan_projection([ShardOutput(shard=0, live=[_live("d1", 5)]), ShardOutput(shard=1, live=[_live("d1", 8)])])
    assert [seq for seq, _ in plan.drivers[0].messages] == [8]


def test_fleet_payloads_are_chunked_and_keep_message_order():
    messages = [b'{"seq":%d}' % i for i in range(1203)]
    payloads = [msgspec.json.decode(p) for p in fleet_payloads(messages, chunk=500)]
    assert [len(p["messages"]) for p in payloads] == [500, 500, 203]
    assert [(p["type"], p["chunk"], p["chunks"]) for p in payloads] == [("fleet_batch", i, 3) for i in range(3)]
    assert [m["seq"] for p in payloads for m in p["messages"]] == list(range(1203))


def test_positions_alone_invalidate_no_cache_entries():
    plan = plan_projection([ShardOutput(shard=0, live=[_live("d2", 1), _live("d1", 2)])])
    assert plan.invalidation is None
    assert msgspec.json.decode(invalidation_payload([])) == {"type": "drivers_changed", "driver_ids": []}


def test_only_drivers_whose_trip_ended_are_listed_for_cache_invalidation():
    plan = plan_projection([
        ShardOutput(shard=0, live=[_live("d1", 2), _live("d3", 3)],
                    events=[_new(_started("d2", 1_000), 4, 1), _new(_ended("d3", 9_000), 3, 2)]),
    ])
    assert msgspec.json.decode(plan.invalidation) == {"type": "drivers_changed", "driver_ids": ["d3"]}


def test_an_empty_batch_plans_nothing():
    plan = plan_projection([ShardOutput(shard=0)])
    assert plan.drivers == () and plan.fleet_payloads == () and plan.invalidation is None


def test_the_plan_is_byte_for_byte_deterministic():
    t = 1_767_225_600_000
    out = ShardOutput(shard=0, live=[_live("d1", 50)], events=[_new(_ended("d1", t), 50, 2)])
    assert plan_projection([out]) == plan_projection([msgspec.msgpack.decode(msgspec.msgpack.encode(out),
                                                                             type=ShardOutput)])


def test_message_order_puts_positions_first_at_equal_seq():
    assert message_order(5, "position") < message_order(5, "trip_started", 1) < message_order(5, "trip_ended", 2)
    assert message_order(6, "position") > message_order(5, "crash_detected", 99)


def test_risk_stream_messages_follow_the_trip_streams_at_their_seq_whatever_the_versions():
    trip_end, score, quote = (message_order(5, "trip_ended", 900), message_order(5, "risk_scored", 1),
                              message_order(5, "premium_quoted", 2))
    assert trip_end < score < quote
    assert message_order(5, "premium_quoted", 2) < message_order(6, "position")


def test_a_crash_is_announced_with_the_claim_it_opened_on_the_driver_and_fleet_feeds():
    from domain.claims import claim_id
    from tests.contracts.claims_contract import crash_event

    crash = crash_event("d1", 7, 1_767_225_600_000)
    plan = plan_projection([ShardOutput(shard=0, events=[crash], live=[_live("d1", 7)])])
    messages = _decoded(plan)
    assert [m["type"] for m in messages] == ["position", "claim_opened", "crash_detected"]
    claim = messages[1]
    assert claim["claim_id"] == str(claim_id(crash.event_id)) and claim["crash_event_id"] == str(crash.event_id)
    assert (claim["seq"], claim["stream_version"], claim["status"]) == (7, 7, "open")
    assert (claim["lat"], claim["lon"], claim["speed_kmh"]) == (52.5, 13.4, 41.0)
    fleet = msgspec.json.decode(plan.fleet_payloads[0])["messages"]
    assert [m["type"] for m in fleet] == ["position", "claim_opened", "crash_detected"]
    assert plan.invalidation is None  # a claim changes nothing the API caches
