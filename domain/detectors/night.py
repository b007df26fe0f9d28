"""Night exposure: how much of an interval falls in the night window of the driver's local time.

Pure function of (interval, IANA zone name, window hours). Zone rules come from the tz database
(zoneinfo / tzdata): deterministic data, not the clock. DST is honoured: the window is 23:00–05:00
wall-clock time, so a night across a DST change is 5 or 7 hours long.

A per-zone memo of the current day/night segment makes the common case (1 s intervals inside one
segment) two comparisons; it never changes a result.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)

# zone name -> (start_h, end_h, segment start ms, segment end ms, is night)
_SEGMENTS: dict[str, tuple[int, int, int, int, bool]] = {}


@lru_cache(maxsize=256)
def zone(name: str) -> ZoneInfo:
    """The ZoneInfo for an IANA name (raises ZoneInfoNotFoundError for an unknown one)."""
    return ZoneInfo(name)


def night_seconds(start_ms: int, end_ms: int, tz_name: str, night_start_h: int, night_end_h: int) -> float:
    """Seconds of [start_ms, end_ms) inside the local night window [night_start_h, night_end_h)."""
    if end_ms <= start_ms or night_start_h == night_end_h:
        return 0.0
    seg = _SEGMENTS.get(tz_name)
    total_ms = 0
    t = start_ms
    while t < end_ms:
        if seg is None or seg[0] != night_start_h or seg[1] != night_end_h or not (seg[2] <= t < seg[3]):
            seg = _segment(t, tz_name, night_start_h, night_end_h)
            _SEGMENTS[tz_name] = seg
        upto = end_ms if end_ms < seg[3] else seg[3]
        if seg[4]:
            total_ms += upto - t
        t = upto
    return total_ms / 1000.0


def is_night(ts_ms: int, tz_name: str, night_start_h: int, night_end_h: int) -> bool:
    """True when `ts_ms` is inside the local night window."""
    if night_start_h == night_end_h:
        return False
    return _segment(ts_ms, tz_name, night_start_h, night_end_h)[4]


def _segment(ts_ms: int, tz_name: str, start_h: int, end_h: int) -> tuple[int, int, int, int, bool]:
    """The maximal day-or-night segment [a, b) containing ts_ms, as (start_h, end_h, a, b, night)."""
    tz = zone(tz_name)
    local_day = (_EPOCH + ts_ms * _MS).astimezone(tz).date()
    marks: list[tuple[int, bool]] = []
    for offset in (-1, 0, 1):
        day = local_day + timedelta(days=offset)
        marks.append((_wall_ms(day.year, day.month, day.day, start_h, tz), True))
        marks.append((_wall_ms(day.year, day.month, day.day, end_h, tz), False))
    marks.sort()
    for i in range(len(marks) - 1):
        if marks[i][0] <= ts_ms < marks[i + 1][0]:
            return (start_h, end_h, marks[i][0], marks[i + 1][0], marks[i][1])
    raise AssertionError("unreachable: three local days always bracket the instant")  # pragma: no cover


def _wall_ms(year: int, month: int, day: int, hour: int, tz: ZoneInfo) -> int:
    local = datetime(year, month, day, hour, tzinfo=tz)
    return (local - _EPOCH) // _MS
