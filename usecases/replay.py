"""Replay a file of readings through the public API: post them in batches, wait for the pipeline, report the trips
the readings fall in and their episodes (`autoins replay`, docs/OPERATIONS.md).

A handler over the TelematicsApi port and a clock: the command reads the file and prints; what is posted, counted
and waited for is decided here and in domain/replay.py. Lines that cannot travel (not a JSON object) are reported
by line number and skipped; the API's refusals are counted per reason. Waiting polls each driver's trips until
the ones holding the accepted readings have not changed for `settle_s`, or `timeout_s` passes.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

from domain.readings import Reading
from domain.replay import SettleWatch, line_problem, trips_with_readings
from domain.rules import ValidationRules
from domain.trip_episodes import Episode
from domain.trip_summary import TripSummary
from domain.validation import decode_reading
from usecases.ports.clock import Clock
from usecases.ports.telematics_api import IngestAnswer, TelematicsApi

Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class ReplayTerms:
    """`batch_size` readings per request (≤ the API's `ingest_max_readings`); the wait: at most `timeout_s`, done
    once the trips found held still for `settle_s`, asking every `poll_s`; `rules` as the API validates."""

    batch_size: int
    timeout_s: float
    settle_s: float = 5.0
    poll_s: float = 1.0
    rules: ValidationRules = field(default_factory=ValidationRules)


@dataclass(frozen=True, slots=True)
class BadLine:
    line_no: int
    problem: str


@dataclass(frozen=True, slots=True)
class TripFound:
    trip: TripSummary
    episodes: list[Episode]


@dataclass
class ReplayReport:
    """What happened: lines read (blank ones not counted), bad lines, readings posted / accepted, refusals per
    reason with their line numbers, the trips found, and how the wait ended."""

    lines: int = 0
    bad_lines: list[BadLine] = field(default_factory=list)
    posted: int = 0
    accepted: int = 0
    refused: Counter[str] = field(default_factory=Counter)
    refused_lines: dict[str, list[int]] = field(default_factory=dict)
    trips: list[TripFound] = field(default_factory=list)
    waited_s: float = 0.0
    settled: bool = False

    def refuse(self, reason: str, line_nos: Iterable[int]) -> None:
        numbers = list(line_nos)
        self.refused[reason] += len(numbers)
        self.refused_lines.setdefault(reason, []).extend(numbers)


class Replay:
    """Posts, waits, reports; `on_progress(n)` is told of every n lines done (posted or skipped): a progress bar."""

    def __init__(self, api: TelematicsApi, clock: Clock, terms: ReplayTerms, sleep: Sleep = asyncio.sleep) -> None:
        self.api = api
        self.clock = clock
        self.terms = terms
        self.sleep = sleep

    async def run(self, lines: Iterable[tuple[int, bytes]],
                  on_progress: Callable[[int], None] = lambda _n: None) -> ReplayReport:
        """`lines`: (line number, bytes) of the file, in order."""
        report = ReplayReport()
        times: dict[str, list[int]] = {}  # driver → device times of their accepted readings
        batch: list[tuple[int, bytes]] = []
        for line_no, raw in lines:
            if not raw.strip():
                continue
            report.lines += 1
            problem = line_problem(raw)
            if problem is not None:
                report.bad_lines.append(BadLine(line_no, problem))
                on_progress(1)
                continue
            batch.append((line_no, raw))
            if len(batch) == self.terms.batch_size:
                await self._post(batch, report, times)
                on_progress(len(batch))
                batch = []
        if batch:
            await self._post(batch, report, times)
            on_progress(len(batch))
        if times:
            for driver_times in times.values():
                driver_times.sort()
            await self._wait_for_trips(times, report)
        return report

    async def _post(self, batch: list[tuple[int, bytes]], report: ReplayReport, times: dict[str, list[int]]) -> None:
        """Post one batch, count what the API said, note the driver and device time of each accepted reading (as
        validated here with the API's rules: the same function, so the same reading)."""
        answer: IngestAnswer = await self.api.post_readings([raw for _, raw in batch])
        report.posted += len(batch)
        report.accepted += answer.accepted
        if answer.batch_refusal is not None:
            report.refuse(answer.batch_refusal, (n for n, _ in batch))
            return
        refused_at: set[int] = set()
        for refusal in answer.refused:
            refused_at.add(refusal.index)
            report.refuse(refusal.reason, [batch[refusal.index][0]])
        now_ms = self.clock.now_ms()
        for i, (_, raw) in enumerate(batch):
            reading = decode_reading(raw, now_ms, self.terms.rules) if i not in refused_at else None
            if isinstance(reading, Reading):
                times.setdefault(reading.driver_id, []).append(reading.ts_ms)

    async def _wait_for_trips(self, times: dict[str, list[int]], report: ReplayReport) -> None:
        started = self.clock.monotonic_s()
        watch = SettleWatch(self.terms.settle_s)
        while True:
            seen = [t for driver, ts in sorted(times.items()) for t in await self.api.trips_ending_since(driver, ts[0])]
            found: list[TripSummary] = trips_with_readings(seen, times)
            now_s = self.clock.monotonic_s()
            if watch.settled(now_s, (t.trip_id for t in found)):
                report.settled = True
                break
            if now_s - started + self.terms.poll_s > self.terms.timeout_s:
                break
            await self.sleep(self.terms.poll_s)
        report.waited_s = self.clock.monotonic_s() - started
        report.trips = [TripFound(t, await self.api.trip_episodes(t.trip_id)) for t in found]
