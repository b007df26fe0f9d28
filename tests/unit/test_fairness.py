"""Population stability, cohorts and calibration (domain/fairness.py): properties and worked cases."""

from __future__ import annotations

import math
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.fairness import (
    PSI_EPSILON,
    age_band,
    bin_edges,
    calibration_deciles,
    cohort_stats,
    proportions,
    psi,
    ratio_out_of_band,
    region_of,
)

finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)
shares = st.lists(st.floats(min_value=0.0, max_value=1.0), min_size=1, max_size=20)


@given(st.lists(finite, min_size=1, max_size=200), st.lists(finite, min_size=0, max_size=200))
def test_psi_is_never_negative_and_proportions_sum_to_one(reference, recent):
    edges = bin_edges(reference)
    expected, actual = proportions(reference, edges), proportions(recent, edges)
    assert math.isclose(sum(expected), 1.0)
    assert math.isclose(sum(actual), 1.0) or (not recent and sum(actual) == 0.0)
    assert psi(expected, actual) >= 0.0


@given(shares)
def test_psi_of_identical_distributions_is_zero_even_with_empty_bins(p):
    assert psi(p, p) == 0.0


@given(st.lists(finite, min_size=1, max_size=100))
def test_the_same_population_is_stable(values):
    edges = bin_edges(values)
    assert psi(proportions(values, edges), proportions(list(reversed(values)), edges)) == 0.0


def test_an_empty_bin_counts_with_the_stated_epsilon():
    # all of the recent population in the first of two bins: (1 − 0.5)·ln(1/0.5) + (ε − 0.5)·ln(ε/0.5)
    expected = 0.5 * math.log(2) + (PSI_EPSILON - 0.5) * math.log(PSI_EPSILON / 0.5)
    assert psi([0.5, 0.5], [1.0, 0.0]) == pytest.approx(expected)
    assert psi([0.5, 0.5], [1.0, 0.0]) > 0.2  # a population moved into one half is significant drift


def test_a_shifted_population_drifts_and_psi_refuses_mismatched_bins():
    reference = [float(i) for i in range(1000)]
    edges = bin_edges(reference)
    assert len(edges) == 9
    shifted = [v + 300 for v in reference]
    assert psi(proportions(reference, edges), proportions(shifted, edges)) > 0.2
    with pytest.raises(ValueError, match="same bins"):
        psi([1.0], [0.5, 0.5])


def test_a_value_on_an_edge_goes_to_the_upper_bin_and_non_finite_values_are_ignored():
    assert proportions([1.0, 2.0, float("nan")], [1.0]) == (0.0, 1.0)


@pytest.mark.parametrize(("born", "band"), [(date(2002, 6, 2), "<25"), (date(2002, 6, 1), "25-34"),
                                            (date(1980, 1, 1), "35-49"), (date(1961, 6, 1), "65+"), (None, "unknown")])
def test_age_bands_count_birthdays(born, band):
    assert age_band(born, date(2027, 6, 1)) == band


def test_regions_come_from_the_time_zone_area():
    assert [region_of(z) for z in ("Europe/Berlin", "America/Argentina/Buenos_Aires", "UTC", None)] == [
        "Europe", "America", "other", "other"]


def test_cohort_ratios_are_against_the_portfolio_mean():
    members = [{"region": "Europe"}, {"region": "Europe"}, {"region": "America"}]
    stats = cohort_stats(members, [20.0, 40.0, 90.0], [500.0, 500.0, None])
    by = {s.cohort: s for s in stats}
    assert by["Europe"].score_ratio == pytest.approx(30.0 / 50.0) and by["America"].score_ratio == 1.8
    assert by["Europe"].premium_ratio == 1.0 and by["America"].premium_ratio is None
    assert ratio_out_of_band(1.8, 0.8, 1.25) and not ratio_out_of_band(None, 0.8, 1.25)


@given(st.lists(st.tuples(st.floats(0, 100), st.floats(0, 2), st.integers(0, 3)), max_size=60))
def test_calibration_keeps_every_driver_and_claim_in_score_order(rows):
    deciles = calibration_deciles([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows], 0.5)
    assert sum(d.drivers for d in deciles) == len(rows) and len(deciles) == min(10, len(rows))
    assert sum(d.observed_claims for d in deciles) == sum(r[2] for r in rows)
    assert [d.mean_score for d in deciles] == sorted(d.mean_score for d in deciles)
    assert sum(d.expected_claims for d in deciles) == pytest.approx(sum(r[1] for r in rows) * 0.5)
