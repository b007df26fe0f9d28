"""Monthly partition calendar: month arithmetic, partition names, the ensure window and retention.

Pure: no I/O, no clock — `now` is always an argument and must be timezone-aware. Months are UTC
calendar months: a partition for 2026-01 holds `[2026-01-01T00:00Z, 2026-02-01T00:00Z)`, whatever
offset a device wrote its timestamp with.

Retention (plan §1.1, "keep 12 months, archive older"): a month is retired when every instant in
it is older than `now - retention_months`, i.e. when it is before `retention_cutoff(now, n)`.
`retention_months >= 1`, so the current month is never retired.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import lru_cache

_MS_PER_DAY = 86_400_000
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_EPOCH_DATETIME = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, order=True, slots=True)
class Month:
    """A UTC calendar month. Ordered; `index` counts months since year 0 (year * 12 + month - 1)."""

    year: int
    month: int

    def __post_init__(self) -> None:
        if not 1 <= self.month <= 12:
            raise ValueError(f"month must be 1..12, not {self.month}")
        if not 1 <= self.year <= 9998:  # 9998 so that `end` (the next month) is still a datetime
            raise ValueError(f"year must be 1..9998, not {self.year}")

    @classmethod
    def of(cls, instant: datetime) -> Month:
        """The UTC month containing an aware instant (a +14:00 timestamp may fall in the previous month)."""
        if instant.tzinfo is None or instant.utcoffset() is None:
            raise ValueError(f"timestamp {instant.isoformat()} has no timezone: refusing to guess")
        utc = instant.astimezone(UTC)
        return cls(utc.year, utc.month)

    @classmethod
    def from_index(cls, index: int) -> Month:
        year, month0 = divmod(index, 12)
        return cls(year, month0 + 1)

    @classmethod
    def parse(cls, text: str) -> Month:
        """`YYYY-MM` (as printed by `str(month)`)."""
        match = re.fullmatch(r"(\d{4})-(\d{2})", text.strip())
        if match is None:
            raise ValueError(f"{text!r} is not a month like 2026-11")
        return cls(int(match[1]), int(match[2]))

    @property
    def index(self) -> int:
        return self.year * 12 + self.month - 1

    def plus(self, months: int) -> Month:
        """This month shifted by `months` (negative goes back); December + 1 is January next year."""
        return Month.from_index(self.index + months)

    @property
    def start(self) -> datetime:
        """Inclusive lower bound, UTC midnight of the 1st."""
        return datetime(self.year, self.month, 1, tzinfo=UTC)

    @property
    def end(self) -> datetime:
        """Exclusive upper bound: the start of the next month."""
        return self.plus(1).start

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"


def months_between(first: Month, last: Month) -> list[Month]:
    """Every month from `first` to `last`, both included; empty when `last < first`."""
    return [Month.from_index(i) for i in range(first.index, last.index + 1)]


# -- partition names -------------------------------------------------------------------------------

_PG_MAX_IDENTIFIER = 63


def partition_name(table: str, month: Month) -> str:
    """`telematics_events_y2026m11`: sortable, and parseable back by `month_of_partition`."""
    name = f"{table}_y{month.year:04d}m{month.month:02d}"
    if len(name.encode()) > _PG_MAX_IDENTIFIER:
        raise ValueError(f"partition name {name!r} exceeds PostgreSQL's {_PG_MAX_IDENTIFIER}-byte limit")
    return name


def month_of_partition(table: str, name: str) -> Month | None:
    """The month a partition name stands for, or None when the name is not one of `table`'s."""
    match = re.fullmatch(re.escape(table) + r"_y(\d{4})m(\d{2})", name)
    if match is None:
        return None
    try:
        return Month(int(match[1]), int(match[2]))
    except ValueError:
        return None


# -- window and retention --------------------------------------------------------------------------


def retention_cutoff(now: datetime, retention_months: int) -> Month:
    """The oldest month retention keeps: months before it are retired. Never the current month."""
    if retention_months < 1:
        raise ValueError(f"retention_months must be >= 1 (the current month is never retired), not {retention_months}")
    return Month.of(now).plus(-retention_months)


def retention_start_ms(now_ms: int, retention_months: int) -> int:
    """Epoch ms of the first instant retention keeps at `now_ms`: validation refuses anything earlier, so
    no accepted reading ever falls in a month that retention retires (or recreates a dropped partition)."""
    return _retention_start_of_month(_month_of_day(now_ms // _MS_PER_DAY).index, retention_months)


@lru_cache(maxsize=64)
def _retention_start_of_month(month_index: int, retention_months: int) -> int:
    # validation asks once per reading: the answer changes only when the month does
    return _epoch_ms(retention_cutoff(Month.from_index(month_index).start, retention_months).start)


def window_months(now: datetime, retention_months: int, ahead_months: int) -> list[Month]:
    """Months that must have a partition: from the retention cutoff to `ahead_months` past now."""
    if ahead_months < 0:
        raise ValueError(f"ahead_months must be >= 0, not {ahead_months}")
    return months_between(retention_cutoff(now, retention_months), Month.of(now).plus(ahead_months))


def months_to_retire(months: Iterable[Month], now: datetime, retention_months: int) -> list[Month]:
    """The given months that retention detaches, archives and drops, oldest first."""
    cutoff = retention_cutoff(now, retention_months)
    current = Month.of(now)
    return sorted({m for m in months if m < cutoff and m != current})


# -- months a batch needs --------------------------------------------------------------------------


def months_of_instants(instants: Iterable[datetime]) -> set[Month]:
    """The UTC months of aware datetimes (naive ones are refused); one conversion when all share a month."""
    values = instants if isinstance(instants, list | tuple) else list(instants)
    if not values:
        return set()
    try:
        low, high = min(values), max(values)
    except TypeError:  # naive mixed with aware: Month.of below names the naive one
        low = high = None
    if low is not None and high is not None and Month.of(low) == Month.of(high):
        return {Month.of(low)}
    return {Month.of(instant) for instant in values}


def months_of_epoch_ms(epoch_ms: Iterable[int]) -> set[Month]:
    """The UTC months of epoch-millisecond timestamps (floor semantics for negatives).

    Cheap for the common batch: when the first and last day agree it converts once; otherwise one
    conversion per distinct day, not per value.
    """
    values = epoch_ms if isinstance(epoch_ms, list | tuple) else list(epoch_ms)
    if not values:
        return set()
    low, high = min(values) // _MS_PER_DAY, max(values) // _MS_PER_DAY
    first, last = _month_of_day(low), _month_of_day(high)
    if first == last:
        return {first}
    days = {ms // _MS_PER_DAY for ms in values}
    return {_month_of_day(day) for day in days}


def _month_of_day(day: int) -> Month:
    civil = date.fromordinal(_EPOCH_ORDINAL + day)
    return Month(civil.year, civil.month)


def _epoch_ms(instant: datetime) -> int:
    delta = instant - _EPOCH_DATETIME
    return delta.days * _MS_PER_DAY + delta.seconds * 1000 + delta.microseconds // 1000
