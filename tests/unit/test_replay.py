"""The replay of a file of readings (usecases/replay.py) over the fake API and a fake clock: batching, bad lines,
refusals per reason, the bounded wait for the pipeline, the trips and episodes reported. Also the TelematicsApi
contract on the fake."""

from __future__ import annotations

import uuid

import pytest

from domain.replay import line_problem
from domain.trip_episodes import Episode
from domain.trip_summary import TripSummary
from storage.memory.telematics_api import InMemoryTelematicsApi
from tests.contracts import telematics_api_contract as contract
from tests.contracts.telematics_api_contract import reading, story_types
from usecases.ports.clock import FakeClock
from usecases.ports.telematics_api import ApiUnavailable
from usecases.replay import Replay, ReplayTerms

NOW_MS = 1_780_000_000_000
DRIVER, OTHER = "driver0001", "driver0002"
T = NOW_MS - 3_600_000  # the file's trip starts an hour ago


class MemoryWorld:
    def __init__(self) -> None:
        self.driver_id, self.other_driver_id, self.now_ms, self.max_readings = DRIVER, OTHER, NOW_MS, 50
        self.api = InMemoryTelematicsApi(now_ms=NOW_MS, max_readings=50, driver_id=DRIVER)

    async def given_trip(self, start_ms: int, end_ms: int, episodes: int) -> uuid.UUID:
        trip = _trip(DRIVER, start_ms, end_ms)
        step = (end_ms - start_ms) // (episodes + 1)
        grades = ["high" if i == 0 else "medium" if kind.startswith("harsh") else None
                  for i, kind in enumerate(story_types(episodes))]  # as the API reads them
        self.api.add_trip(trip, episodes=[_episode(kind, start_ms + (i + 1) * step, grades[i])
                                          for i, kind in enumerate(story_types(episodes))])
        return trip.trip_id


@pytest.mark.parametrize("check", contract.CONTRACT, ids=lambda c: c.__name__)
async def test_the_in_memory_api_keeps_the_telematics_api_contract(check):
    await check(MemoryWorld())


def _trip(driver_id: str, start_ms: int, end_ms: int) -> TripSummary:
    return TripSummary(trip_id=uuid.uuid4(), driver_id=driver_id, start_ms=start_ms, end_ms=end_ms,
                       distance_m=5_000.0, duration_s=(end_ms - start_ms) / 1000, avg_speed_kmh=30.0,
                       max_speed_kmh=60.0)


def _episode(kind: str, at_ms: int, grade: str | None = None) -> Episode:
    return Episode(event_id=uuid.uuid4(), type=kind, grade=grade, start_ms=at_ms,  # type: ignore[arg-type]
                   end_ms=at_ms + 2000, duration_s=2.0, peak_value=4.0, peak_unit="m/s²", lat=45.0, lon=7.0)


def _replay(api: InMemoryTelematicsApi, batch_size: int = 10, timeout_s: float = 30.0,
            settle_s: float = 3.0) -> Replay:
    clock = FakeClock(now_ms=NOW_MS)

    async def sleep(seconds: float) -> None:
        clock.advance(seconds)

    return Replay(api, clock, ReplayTerms(batch_size=batch_size, timeout_s=timeout_s, settle_s=settle_s), sleep)


def _lines(*raws: bytes) -> list[tuple[int, bytes]]:
    return list(enumerate(raws, start=1))


def _drive(driver_id: str, count: int, start_ms: int = T) -> list[bytes]:
    return [reading(driver_id, start_ms + i * 1000) for i in range(count)]


async def test_readings_go_in_batches_of_at_most_the_batch_size():
    api = InMemoryTelematicsApi(now_ms=NOW_MS)
    progress: list[int] = []
    report = await _replay(api, batch_size=10).run(_lines(*_drive(DRIVER, 25)), progress.append)
    assert api.batches == [10, 10, 5] and (report.lines, report.posted, report.accepted) == (25, 25, 25)
    assert progress == [10, 10, 5]


async def test_bad_lines_are_reported_by_number_and_the_good_ones_still_go():
    api = InMemoryTelematicsApi(now_ms=NOW_MS)
    good = _drive(DRIVER, 3)
    lines = _lines(good[0], b"not json", b"", good[1], b"[1, 2]", b"   \n", good[2])
    report = await _replay(api).run(lines)
    assert [(b.line_no, b.problem.split(":")[0]) for b in report.bad_lines] == [
        (2, "not JSON"), (5, "an array, not a JSON object")]
    assert (report.lines, report.posted, report.accepted) == (5, 3, 3) and len(api.accepted) == 3


async def test_the_apis_refusals_are_counted_per_reason_with_their_lines():
    api = InMemoryTelematicsApi(now_ms=NOW_MS)
    lines = _lines(reading(DRIVER, T), reading(DRIVER, T + 1, lat=95.0), reading(DRIVER, T + 2, ts=None),
                   reading(DRIVER, T + 3, lat=-91.0), reading(DRIVER, T + 4))
    report = await _replay(api, batch_size=2).run(lines)
    assert report.refused == {"lat_out_of_range": 2, "missing_field": 1}
    assert report.refused_lines == {"lat_out_of_range": [2, 4], "missing_field": [3]}
    assert (report.posted, report.accepted) == (5, 2)


async def test_a_batch_refused_whole_counts_each_of_its_lines_and_the_next_batches_still_go():
    api = InMemoryTelematicsApi(now_ms=NOW_MS, driver_id=DRIVER)
    lines = _lines(*_drive(DRIVER, 2), reading(OTHER, T), *_drive(DRIVER, 2, T + 10_000))
    report = await _replay(api, batch_size=2).run(lines)
    assert report.refused == {"forbidden": 2} and report.refused_lines == {"forbidden": [3, 4]}
    assert report.accepted == 3


async def test_it_waits_until_the_trips_holding_the_readings_settle_and_reports_their_episodes():
    api = InMemoryTelematicsApi(now_ms=NOW_MS)
    first, second = _trip(DRIVER, T, T + 20_000), _trip(DRIVER, T + 40_000, T + 59_000)
    api.add_trip(first, shows_after_polls=2, episodes=[_episode("harsh_braking", T + 5_000, "high")])
    api.add_trip(second, shows_after_polls=4)
    api.add_trip(_trip(DRIVER, T - 90_000, T - 60_000))  # an earlier trip: none of the file's readings
    api.add_trip(_trip(OTHER, T, T + 60_000))  # another driver's
    report = await _replay(api, settle_s=3.0).run(_lines(*_drive(DRIVER, 60)))
    assert report.settled and [f.trip.trip_id for f in report.trips] == [first.trip_id, second.trip_id]
    assert [(e.type, e.grade) for e in report.trips[0].episodes] == [("harsh_braking", "high")]
    assert report.trips[1].episodes == []
    assert report.waited_s == pytest.approx(4 + 3)  # the second trip shows on the 5th poll, then 3 s of quiet


async def test_the_wait_ends_at_the_timeout_when_no_trip_shows():
    api = InMemoryTelematicsApi(now_ms=NOW_MS)
    report = await _replay(api, timeout_s=10.0).run(_lines(*_drive(DRIVER, 5)))
    assert not report.settled and report.trips == [] and report.waited_s <= 10.0


async def test_nothing_is_waited_for_when_no_reading_was_accepted():
    api = InMemoryTelematicsApi(now_ms=NOW_MS)
    report = await _replay(api).run(_lines(reading(DRIVER, T, lat=95.0), b"{"))
    assert (report.accepted, report.waited_s, api.polls) == (0, 0.0, 0)


async def test_an_unavailable_api_stops_the_replay_with_its_message():
    api = InMemoryTelematicsApi(now_ms=NOW_MS)
    api.available = False
    with pytest.raises(ApiUnavailable, match="cannot reach the API"):
        await _replay(api).run(_lines(*_drive(DRIVER, 3)))


def test_the_contracts_readings_are_lines_the_replay_can_post():
    assert line_problem(reading(DRIVER, T)) is None
