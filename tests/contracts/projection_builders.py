"""Builders of projector inputs for tests (live positions, events and a whole trip as ShardOutputs) and a reader
of their projected messages. Pure."""

from __future__ import annotations

import uuid

import msgspec

from domain.batches import LivePosition, NewEvent, ShardOutput
from domain.events import HarshBrakingDetected, TripEnded, TripStarted, encode_event
from domain.trip_summary import TripSummary

T0 = 1_767_225_600_000


def live(driver_id: str, seq: int, trip_id: uuid.UUID | None = None) -> LivePosition:
    return LivePosition(driver_id, seq, T0 + seq * 1000, 52.5 + seq / 1e6, 13.4, 40.0 + seq % 7, 90.0, trip_id)


def new_event(event, seq: int, version: int) -> NewEvent:
    return NewEvent(event.event_id, event.driver_id, version, event.__struct_config__.tag, event.occurred_at_ms,
                    encode_event(event), seq)  # fmt: skip


def trip_batch(driver_id: str, first_seq: int, last_seq: int) -> tuple[ShardOutput, uuid.UUID]:
    """A whole trip in one batch: started at `first_seq`, a harsh brake, ended at `last_seq`."""
    trip = uuid.uuid4()
    start_ms, end_ms = T0 + first_seq * 1000, T0 + last_seq * 1000
    started = TripStarted(event_id=uuid.uuid4(), driver_id=driver_id, trip_id=trip, occurred_at_ms=start_ms,
                          start_reason="ignition_on", lat=52.5, lon=13.4)  # fmt: skip
    harsh = HarshBrakingDetected(event_id=uuid.uuid4(), driver_id=driver_id, trip_id=trip, occurred_at_ms=end_ms - 5000,
                                 peak_mps2=4.5, duration_s=2.0, speed_at_start_kmh=60.0, start_ms=end_ms - 7000,
                                 end_ms=end_ms - 5000, lat=52.5, lon=13.4)  # fmt: skip
    summary = TripSummary(trip_id=trip, driver_id=driver_id, start_ms=start_ms, end_ms=end_ms, distance_m=3000.0,
                          duration_s=(end_ms - start_ms) / 1000, avg_speed_kmh=30.0, max_speed_kmh=60.0,
                          harsh_braking_count=1)  # fmt: skip
    ended = TripEnded(event_id=uuid.uuid4(), driver_id=driver_id, trip_id=trip, occurred_at_ms=end_ms, summary=summary)
    events = [new_event(started, first_seq, 1), new_event(harsh, last_seq - 5, 2), new_event(ended, last_seq, 3)]
    return ShardOutput(shard=0, events=events, trips=[summary], live=[live(driver_id, last_seq)]), trip


def newest_position_seq(messages: list[bytes]) -> int | None:
    """The `seq` of the last `position` among messages in message order (what a resuming viewer shows as the
    driver's place), or None without one."""
    seqs = [m["seq"] for m in map(msgspec.json.decode, messages) if m["type"] == "position"]
    return seqs[-1] if seqs else None
