"""When the scorer scores: the pending drivers, the flush interval, backoff and catch-up, as plain decisions.

No Ray, no sleeps: every method takes `now_s` (a monotonic clock, usecases.ports.clock) and the actor's loop
does what `next_action` says (house habit 1; ray serve's deployment_state is the model). Rules:
- a submitted trip makes its driver pending (submissions only say *who*; the round loads *what* from the
  store); a round is due `flush_interval_s` after the oldest pending submission, or at once when `batch_size`
  trips wait; it takes up to `max_drivers` drivers, oldest submission first;
- a failed round puts its drivers back and backs off: `first_backoff_s`, doubling to `max_backoff_s`; a
  successful round resets the backoff; drivers the round left with more trips are pending again at once;
- the catch-up (every unscored trip, oldest first, bounded) runs at start and every `catchup_every_s`; when it
  found a full page it runs again as soon as the pending drivers are drained.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from domain.scoring import UNKNOWN_SEQ, EndedTrip


@dataclass(frozen=True, slots=True)
class ScheduleRules:
    """Knobs, seconds and counts. Defaults: docs/SCORING.md."""

    flush_interval_s: float = 1.0
    batch_size: int = 100
    max_drivers: int = 2_000
    catchup_every_s: float = 60.0
    catchup_batch: int = 1_000
    first_backoff_s: float = 1.0
    max_backoff_s: float = 30.0

    def __post_init__(self) -> None:
        if self.flush_interval_s < 0 or self.catchup_every_s <= 0 or self.first_backoff_s <= 0:
            raise ValueError("flush_interval_s ≥ 0, catchup_every_s > 0 and first_backoff_s > 0 are required")
        if min(self.batch_size, self.max_drivers, self.catchup_batch) < 1 or self.max_backoff_s < self.first_backoff_s:
            raise ValueError("batch_size, max_drivers, catchup_batch ≥ 1 and max_backoff_s ≥ first_backoff_s")


@dataclass(frozen=True, slots=True)
class CatchUp:
    """Look for unscored trips (up to `limit`), then report with `catchup_done` or `catchup_failed`."""

    limit: int


@dataclass(frozen=True, slots=True)
class ScoreRound:
    """Score these drivers' unscored trips; `known` are the submitted trips (their offsets). Report with
    `round_done` or `round_failed`."""

    drivers: tuple[str, ...]
    known: dict[uuid.UUID, EndedTrip]


@dataclass(frozen=True, slots=True)
class Wait:
    """Nothing to do before `until_s` (or a submission that `submit` says wakes the loop)."""

    until_s: float


Action = CatchUp | ScoreRound | Wait


class ScoringSchedule:
    def __init__(self, rules: ScheduleRules, now_s: float) -> None:
        self.rules = rules
        self.pending: dict[str, dict[uuid.UUID, EndedTrip]] = {}  # driver → submitted trips, oldest driver first
        self.first_pending_at: float | None = None
        self.retry_at = now_s
        self.backoff_s = 0.0
        self.next_catchup_at = now_s  # at start
        self.more_unscored = False

    @property
    def pending_drivers(self) -> int:
        return len(self.pending)

    @property
    def pending_trips(self) -> int:
        return sum(max(1, len(trips)) for trips in self.pending.values())

    def submit(self, trips: Iterable[EndedTrip], now_s: float) -> bool:
        """Make the trips' drivers pending. True when the loop should re-decide now (the first pending
        driver sets a deadline; a full batch is due at once)."""
        first = not self.pending
        for trip in trips:
            held = self.pending.setdefault(trip.driver_id, {})
            if trip.seq != UNKNOWN_SEQ or trip.trip_id not in held:
                held[trip.trip_id] = trip
        if not self.pending:
            return False
        if first:
            self.first_pending_at = now_s
        return first or self.pending_trips >= self.rules.batch_size

    def _touch(self, drivers: Iterable[str], now_s: float) -> None:
        for driver in drivers:
            self.pending.setdefault(driver, {})
        if self.pending and self.first_pending_at is None:
            self.first_pending_at = now_s

    def next_action(self, now_s: float) -> Action:
        """What to do now. Pure: call `take_round` / `catchup_started` to act on it."""
        if self._round_due(now_s):
            return ScoreRound(*self._peek())
        if now_s >= self.next_catchup_at or (self.more_unscored and not self.pending):
            return CatchUp(self.rules.catchup_batch)
        wake = self.next_catchup_at
        if self.pending:
            wake = min(wake, max(self.retry_at, self._first_pending(now_s) + self.rules.flush_interval_s))
        return Wait(wake)

    def _first_pending(self, now_s: float) -> float:
        return now_s if self.first_pending_at is None else self.first_pending_at

    def _round_due(self, now_s: float) -> bool:
        if not self.pending or now_s < self.retry_at:
            return False
        full = self.pending_trips >= self.rules.batch_size
        return full or now_s - self._first_pending(now_s) >= self.rules.flush_interval_s

    def _peek(self) -> tuple[tuple[str, ...], dict[uuid.UUID, EndedTrip]]:
        drivers = tuple(list(self.pending)[: self.rules.max_drivers])
        return drivers, {t.trip_id: t for d in drivers for t in self.pending[d].values()}

    def take_round(self, now_s: float) -> ScoreRound:
        """The round `next_action` chose, its drivers no longer pending (a submission meanwhile adds them back)."""
        drivers, known = self._peek()
        for driver in drivers:
            del self.pending[driver]
        self.first_pending_at = now_s if self.pending else None
        return ScoreRound(drivers, known)

    def round_done(self, work: ScoreRound, more: Sequence[str], now_s: float) -> None:
        """Success: the backoff resets; `more` (drivers left with unscored trips) are pending again, due now."""
        self.backoff_s = 0.0
        self.retry_at = now_s
        if more:
            self._touch(more, now_s)
            self.first_pending_at = min(self._first_pending(now_s), now_s - self.rules.flush_interval_s)

    def round_failed(self, work: ScoreRound, now_s: float) -> float:
        """Failure (model unavailable, storage error): the drivers go back, the next round waits the backoff
        (first_backoff_s doubling to max_backoff_s). Returns the backoff."""
        self.submit(work.known.values(), now_s)
        self._touch(work.drivers, now_s)
        self.backoff_s = min(self.rules.max_backoff_s, max(self.rules.first_backoff_s, self.backoff_s * 2))
        self.retry_at = now_s + self.backoff_s
        return self.backoff_s

    def catchup_started(self, now_s: float) -> None:
        self.next_catchup_at = now_s + self.rules.catchup_every_s
        self.more_unscored = False

    def catchup_done(self, found: Sequence[EndedTrip], now_s: float) -> None:
        """The found trips' drivers become pending; a full page means more may wait: look again once drained."""
        self.submit(found, now_s)
        self.more_unscored = len(found) >= self.rules.catchup_batch

    def catchup_failed(self, now_s: float) -> None:
        """The next catch-up is at its usual time; live submissions still flow."""
