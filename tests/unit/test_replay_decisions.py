"""What `autoins replay` decides in pure code (domain/replay.py): which lines can travel, which trips the readings
fall in, when the trips found have settled."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from domain.replay import SettleWatch, line_problem, trips_with_readings


@pytest.mark.parametrize(("line", "problem"), [
    (b'{"event_id": "x"}', None),
    (b'{"a": 1}\n', None),
    (b'{"a": ', "not JSON"),
    (b"\xff\xfe", "not JSON"),
    (b"[1, 2]", "an array, not a JSON object"),
    (b'"text"', "a string, not a JSON object"),
    (b"42", "a number, not a JSON object"),
    (b"null", "null, not a JSON object"),
])
def test_only_a_json_object_can_travel_as_a_reading(line, problem):
    found = line_problem(line)
    assert (found is None) if problem is None else (found is not None and found.startswith(problem))


@dataclass(frozen=True)
class Trip:
    driver_id: str
    start_ms: int
    end_ms: int


def test_a_trip_is_the_files_when_it_holds_one_of_that_drivers_readings():
    trips = [Trip("a", 100, 200), Trip("a", 300, 400), Trip("b", 100, 200), Trip("a", 500, 600), Trip("c", 0, 999)]
    times = {"a": [150, 400, 450], "b": [90, 201]}
    assert trips_with_readings(trips, times) == [Trip("a", 100, 200), Trip("a", 300, 400)]


def test_trips_come_by_start_whatever_order_they_were_found_in():
    trips = [Trip("b", 50, 60), Trip("a", 10, 20)]
    assert trips_with_readings(trips, {"a": [15], "b": [55]}) == [Trip("a", 10, 20), Trip("b", 50, 60)]


def test_the_trips_settle_once_found_and_unchanged_for_the_settle_time():
    watch = SettleWatch(settle_s=5.0)
    assert not watch.settled(0.0, [])
    assert not watch.settled(10.0, [])  # nothing found is never settled: the deadline decides
    assert not watch.settled(11.0, ["t1"])
    assert not watch.settled(15.0, ["t1"])
    assert not watch.settled(15.5, ["t1", "t2"])  # a new trip starts the settle time again
    assert watch.settled(20.5, ["t2", "t1"])
