from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.partition_calendar import (
    Month,
    month_of_partition,
    months_between,
    months_of_epoch_ms,
    months_of_instants,
    months_to_retire,
    partition_name,
    retention_cutoff,
    window_months,
)

NOW = datetime(2026, 3, 15, 12, 0, tzinfo=UTC)

months = st.builds(Month, st.integers(1000, 9000), st.integers(1, 12))
offsets = st.integers(-14 * 60, 14 * 60).map(lambda minutes: timezone(timedelta(minutes=minutes)))
instants = st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2100, 1, 1), timezones=offsets)


def test_december_plus_one_is_january_of_the_next_year():
    assert Month(2026, 12).plus(1) == Month(2027, 1)


def test_january_minus_one_is_december_of_the_previous_year():
    assert Month(2026, 1).plus(-1) == Month(2025, 12)


def test_shifting_by_whole_years_keeps_the_month():
    assert Month(2026, 5).plus(-60) == Month(2021, 5)
    assert Month(2026, 5).plus(24) == Month(2028, 5)


@given(months, st.integers(-600, 600))
def test_shifting_back_and_forth_returns_the_same_month(month, shift):
    assert month.plus(shift).plus(-shift) == month


@given(months, st.integers(0, 600))
def test_shifting_forward_never_goes_back(month, shift):
    assert month.plus(shift) >= month
    assert month.plus(shift).index - month.index == shift


def test_a_month_spans_from_its_first_midnight_to_the_next_months():
    month = Month(2026, 12)
    assert month.start == datetime(2026, 12, 1, tzinfo=UTC)
    assert month.end == datetime(2027, 1, 1, tzinfo=UTC)


def test_the_last_microsecond_of_january_and_the_first_of_february_are_different_months():
    assert Month.of(datetime(2026, 1, 31, 23, 59, 59, 999999, tzinfo=UTC)) == Month(2026, 1)
    assert Month.of(datetime(2026, 2, 1, tzinfo=UTC)) == Month(2026, 2)


def test_a_plus_14_offset_on_the_first_belongs_to_the_previous_utc_month():
    tonga = timezone(timedelta(hours=14))
    assert Month.of(datetime(2026, 2, 1, 5, 0, tzinfo=tonga)) == Month(2026, 1)
    assert Month.of(datetime(2026, 2, 1, 14, 0, tzinfo=tonga)) == Month(2026, 2)


@given(instants)
def test_an_instant_lies_within_its_month(instant):
    month = Month.of(instant)
    assert month.start <= instant < month.end


def test_a_naive_timestamp_is_refused():
    with pytest.raises(ValueError, match="no timezone"):
        Month.of(datetime(2026, 1, 1))


@pytest.mark.parametrize("year, month", [(2026, 0), (2026, 13), (0, 5), (9999, 1)])
def test_impossible_months_are_refused(year, month):
    with pytest.raises(ValueError):
        Month(year, month)


def test_months_print_and_parse_as_year_dash_month():
    assert str(Month(2026, 3)) == "2026-03"
    assert Month.parse("2026-03") == Month(2026, 3)
    with pytest.raises(ValueError):
        Month.parse("2026-3")


def test_months_between_includes_both_ends_and_crosses_years():
    assert months_between(Month(2025, 11), Month(2026, 2)) == [
        Month(2025, 11),
        Month(2025, 12),
        Month(2026, 1),
        Month(2026, 2),
    ]
    assert months_between(Month(2026, 2), Month(2026, 1)) == []


def test_partition_names_are_table_year_and_month():
    assert partition_name("telematics_events", Month(2026, 11)) == "telematics_events_y2026m11"
    assert partition_name("domain_events", Month(2026, 1)) == "domain_events_y2026m01"


@given(months)
def test_a_partition_name_parses_back_to_its_month(month):
    assert month_of_partition("telematics_events", partition_name("telematics_events", month)) == month


@pytest.mark.parametrize(
    "name",
    ["domain_events_y2026m11", "telematics_events_y2026m13", "telematics_events_2026_11", "telematics_events_y2026m1"],
)
def test_names_of_other_tables_or_other_shapes_are_not_partitions(name):
    assert month_of_partition("telematics_events", name) is None


def test_partition_names_longer_than_postgres_allows_are_refused():
    with pytest.raises(ValueError, match="63"):
        partition_name("t" * 60, Month(2026, 1))


def test_retention_keeps_the_cutoff_month_and_everything_after():
    assert retention_cutoff(NOW, 12) == Month(2025, 3)
    assert retention_cutoff(NOW, 1) == Month(2026, 2)


def test_retention_of_zero_months_is_refused():
    with pytest.raises(ValueError, match=">= 1"):
        retention_cutoff(NOW, 0)


def test_months_to_retire_are_those_before_the_cutoff_oldest_first():
    existing = [Month(2026, 4), Month(2026, 3), Month(2026, 2), Month(2026, 1), Month(2021, 6), Month(2025, 12)]
    assert months_to_retire(existing, NOW, 2) == [Month(2021, 6), Month(2025, 12)]


@given(st.lists(months, max_size=30), instants, st.integers(1, 240))
def test_retention_never_retires_the_current_month_or_anything_newer_than_the_cutoff(existing, now, retention):
    retired = months_to_retire(existing, now, retention)
    assert Month.of(now) not in retired
    assert all(month < retention_cutoff(now, retention) for month in retired)
    assert retired == sorted(set(retired))


def test_the_window_runs_from_the_retention_cutoff_to_the_months_ahead():
    window = window_months(NOW, 12, 3)
    assert window[0] == Month(2025, 3)
    assert window[-1] == Month(2026, 6)
    assert len(window) == 12 + 1 + 3


@given(instants, st.integers(1, 120), st.integers(0, 36))
def test_the_window_is_contiguous_and_contains_now(now, retention, ahead):
    window = window_months(now, retention, ahead)
    assert Month.of(now) in window
    assert [m.index for m in window] == list(range(window[0].index, window[0].index + len(window)))
    assert len(window) == retention + ahead + 1


def test_a_negative_window_ahead_is_refused():
    with pytest.raises(ValueError):
        window_months(NOW, 12, -1)


def _ms(instant: datetime) -> int:
    return (instant - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)


def test_epoch_milliseconds_on_either_side_of_a_month_boundary_give_two_months():
    last_ms_of_january = _ms(datetime(2026, 2, 1, tzinfo=UTC)) - 1
    assert months_of_epoch_ms([last_ms_of_january]) == {Month(2026, 1)}
    assert months_of_epoch_ms([last_ms_of_january, last_ms_of_january + 1]) == {Month(2026, 1), Month(2026, 2)}


def test_no_timestamps_need_no_months():
    assert months_of_epoch_ms([]) == set()
    assert months_of_instants([]) == set()


@given(st.lists(st.integers(-(10**12), 4 * 10**12), min_size=1, max_size=50))
def test_epoch_millisecond_months_agree_with_datetime_months(values):
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    expected = {Month.of(epoch + timedelta(milliseconds=ms)) for ms in values}
    assert months_of_epoch_ms(values) == expected
    assert months_of_epoch_ms(iter(values)) == expected


@given(st.lists(instants, min_size=1, max_size=30))
def test_instant_months_are_each_instants_month(values):
    assert months_of_instants(values) == {Month.of(v) for v in values}


def test_a_naive_timestamp_among_aware_ones_is_refused():
    with pytest.raises(ValueError, match="no timezone"):
        months_of_instants([NOW, datetime(2026, 1, 1)])
