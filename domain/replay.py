"""What `autoins replay` decides without I/O: which lines of a JSON-lines file can be posted as readings, which
trips the accepted readings fall in, and when the trips found have stopped changing.

Pure. Validating a reading is the API's job (domain.validation runs there, and its reasons are what the replay
counts); a line is only refused here when it cannot travel at all: not JSON, or JSON that is not an object.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

import msgspec

_DECODE = msgspec.json.Decoder().decode
_JSON_KIND = {list: "an array", str: "a string", int: "a number", float: "a number", bool: "true or false",
              type(None): "null"}


def line_problem(line: bytes) -> str | None:
    """Why a line cannot be posted as a reading (not JSON, not an object), or None when it can."""
    try:
        value = _DECODE(line)
    except msgspec.DecodeError as error:
        return f"not JSON: {error}"
    if not isinstance(value, dict):
        return f"{_JSON_KIND.get(type(value), 'a JSON value')}, not a JSON object"
    return None


class Span(Protocol):
    driver_id: str
    start_ms: int
    end_ms: int


T = TypeVar("T", bound=Span)


def trips_with_readings(trips: Iterable[T], reading_ms: Mapping[str, Sequence[int]]) -> list[T]:
    """The trips (of any driver) holding at least one of that driver's readings (device times, epoch ms, sorted)
    between their start and end inclusive, by start. A trip the file only brushes past is not one of its trips."""
    found = []
    for trip in trips:
        times = reading_ms.get(trip.driver_id, ())
        i = bisect.bisect_left(times, trip.start_ms)
        if i < len(times) and times[i] <= trip.end_ms:
            found.append(trip)
    return sorted(found, key=lambda t: (t.start_ms, t.driver_id))


@dataclass
class SettleWatch:
    """Decides when the trips found have settled: something was found and nothing changed for `settle_s`.

    The pipeline gives no "done" signal through the API: a driver's trip appears once the reading after its end
    is processed, and one batch can end several trips or few. So the replay polls and stops when the answer has
    held still that long (or its deadline passes). Time is an input (seconds on a monotonic clock)."""

    settle_s: float
    found: frozenset[object] = field(default_factory=frozenset)
    changed_at_s: float | None = None

    def settled(self, now_s: float, found: Iterable[object]) -> bool:
        current = frozenset(found)
        if self.changed_at_s is None or current != self.found:
            self.found, self.changed_at_s = current, now_s
        return bool(self.found) and now_s - self.changed_at_s >= self.settle_s
