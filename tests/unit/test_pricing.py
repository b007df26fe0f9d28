"""Pricing: bands, breakdown, Decimal rounding, change cap, clamp, the band forecast, and guardrail properties."""

from __future__ import annotations

import math
from decimal import Decimal

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.pricing import DEFAULT_BANDS, DEFAULT_RULES, Band, PricingRules, band_for, quote

D = Decimal


@pytest.mark.parametrize(
    ("score", "band"),
    [(0, "A"), (19.999, "A"), (20, "B"), (39.99, "B"), (40, "C"), (59.5, "C"), (60, "D"), (79.9999, "D"),
     (80, "E"), (100, "E")],
)
def test_band_boundaries_belong_to_the_upper_band(score, band):
    assert band_for(score).name == band
    assert quote(score, 0).band == band


def test_breakdown_adds_band_part_and_per_km_part():
    q = quote(50.0, 12_000)
    assert (q.band, q.band_multiplier, q.base_premium) == ("C", D("1.00"), D("600.00"))
    assert q.band_premium == D("600.00") and q.per_km_premium == D("240.00")
    assert q.raw_premium == q.premium == D("840.00")
    assert not q.cap_applied and q.cap_direction is None and not q.clamp_applied
    assert q.currency == "EUR" and q.previous_premium is None


def test_money_is_rounded_half_even_to_the_cent():
    rules = PricingRules(per_km_rate=D("0.001"))
    assert quote(50, 12_345, rules=rules).per_km_premium == D("12.34")  # 12.345 → even
    assert quote(50, 12_355, rules=rules).per_km_premium == D("12.36")  # 12.355 → even
    odd = PricingRules(base_annual_premium=D("600.05"), per_km_rate=D("0"))
    assert quote(10, 0, rules=odd).band_premium == D("480.04")  # 480.040 exactly
    assert quote(30, 0, rules=odd).band_premium == D("540.04")  # 540.045 → even
    assert quote(50, 1_234.567).premium.as_tuple().exponent == -2


def test_cap_limits_an_increase_to_15_percent():
    q = quote(90, 20_000, previous_premium=D("500.00"))  # raw 900 + 400
    assert q.raw_premium == D("1300.00")
    assert q.premium == D("575.00") and q.cap_applied and q.cap_direction == "increase"


def test_cap_limits_a_decrease_to_15_percent():
    q = quote(5, 5_000, previous_premium=D("1200.00"))  # raw 480 + 100
    assert q.premium == D("1020.00") and q.cap_direction == "decrease"


def test_cap_bounds_are_rounded_inward_to_the_cent():
    up = quote(100, 50_000, previous_premium=D("333.33"))  # 333.33 × 1.15 = 383.3295 → down
    down = quote(0, 0, previous_premium=D("666.67"))  # 666.67 × 0.85 = 566.6695 → up
    assert up.premium == D("383.32") and up.cap_direction == "increase"
    assert down.premium == D("566.67") and down.cap_direction == "decrease"


def test_clamp_holds_the_premium_within_min_and_max():
    assert quote(100, 1_000_000).premium == D("5000.00")
    cheap = PricingRules(base_annual_premium=D("100.00"))
    q = quote(0, 0, rules=cheap)
    assert q.raw_premium == D("80.00") and q.premium == D("250.00") and q.clamp_applied


def test_clamp_wins_when_the_previous_premium_is_outside_it():
    q = quote(100, 1_000_000, previous_premium=D("10000.00"))  # cap lower bound 8500 > max 5000
    assert q.premium == D("5000.00") and q.clamp_applied


def test_forecast_gives_score_distance_and_saving_to_the_neighbour_bands():
    q = quote(23.2, 12_000)
    assert (q.band, q.better_band, q.worse_band) == ("B", "A", "C")
    assert q.score_drop_to_better_band == 3.2 and q.score_rise_to_worse_band == 16.8
    assert q.premium == D("780.00") and q.premium_at_better_band == D("720.00")
    assert q.saving_at_better_band == D("60.00") and q.premium_at_worse_band == D("840.00")
    best, worst = quote(5, 0), quote(95, 0)
    assert best.better_band is None and best.score_drop_to_better_band is None and best.saving_at_better_band is None
    assert worst.worse_band is None and worst.score_rise_to_worse_band is None
    assert quote(20, 0).score_drop_to_better_band == 0.0  # at the lower edge: any drop enters A


def test_forecast_respects_the_cap():
    q = quote(50, 12_000, previous_premium=D("800.00"))
    assert q.premium == D("840.00") and q.premium_at_better_band == D("780.00")
    held = quote(50, 12_000, previous_premium=D("1000.00"))  # raw 840 < floor 850
    assert held.premium == D("850.00") and held.premium_at_better_band == D("850.00")
    assert held.saving_at_better_band == D("0.00")


@pytest.mark.parametrize("score", [-0.01, 100.01, float("nan"), float("inf"), -math.inf])
def test_score_outside_0_to_100_is_rejected_with_a_message(score):
    with pytest.raises(ValueError, match=r"risk score must be within 0–100"):
        quote(score, 1_000)


@pytest.mark.parametrize("score", ["50", True, None])
def test_score_that_is_not_a_number_is_rejected(score):
    with pytest.raises(ValueError, match="risk score must be a number"):
        quote(score, 1_000)


def test_bad_km_or_previous_premium_is_rejected():
    with pytest.raises(ValueError, match="annual_km"):
        quote(50, -1)
    with pytest.raises(ValueError, match="annual_km"):
        quote(50, float("nan"))
    for bad in (D("0"), D("-5"), D("NaN"), 500.0):
        with pytest.raises(ValueError, match="previous_premium"):
            quote(50, 1_000, previous_premium=bad)


def test_rules_are_validated():
    gap = (*DEFAULT_BANDS[:2], Band("C", 41.0, 100.0, D("1.0")))
    with pytest.raises(ValueError, match="contiguous"):
        PricingRules(bands=gap)
    with pytest.raises(ValueError, match="cover"):
        PricingRules(bands=DEFAULT_BANDS[:-1])
    with pytest.raises(ValueError, match="min_premium"):
        PricingRules(min_premium=D("600.00"), max_premium=D("500.00"))
    with pytest.raises(ValueError, match="max_change_ratio"):
        PricingRules(max_change_ratio=D("0"))
    with pytest.raises(ValueError, match="whole cents"):
        PricingRules(min_premium=D("250.005"))


def test_quote_encodes_money_as_decimal_strings():
    body = msgspec.json.decode(msgspec.json.encode(quote(23.2, 12_000)))
    assert body["premium"] == "780.00" and body["band"] == "B" and body["saving_at_better_band"] == "60.00"


# --- properties ------------------------------------------------------------------------------------

scores = st.floats(min_value=0.0, max_value=100.0, allow_nan=False)
kms = st.floats(min_value=0.0, max_value=500_000.0, allow_nan=False)
in_clamp = st.decimals(min_value=DEFAULT_RULES.min_premium, max_value=DEFAULT_RULES.max_premium, places=2)
any_previous = st.decimals(min_value=D("0.01"), max_value=D("1000000"), places=2)
SETTINGS = settings(max_examples=400, deadline=None, database=None)


@SETTINGS
@given(scores, kms, in_clamp)
def test_premium_never_moves_beyond_the_cap_nor_leaves_the_clamp(score, km, previous):
    q = quote(score, km, previous_premium=previous)
    r = DEFAULT_RULES.max_change_ratio
    assert DEFAULT_RULES.min_premium <= q.premium <= DEFAULT_RULES.max_premium
    assert previous * (1 - r) <= q.premium <= previous * (1 + r)
    assert q.premium.as_tuple().exponent == -2


@SETTINGS
@given(scores, kms, st.none() | any_previous)
def test_premium_always_stays_within_the_clamp(score, km, previous):
    q = quote(score, km, previous_premium=previous)
    assert DEFAULT_RULES.min_premium <= q.premium <= DEFAULT_RULES.max_premium
    assert q.premium.as_tuple().exponent == -2
    if not q.cap_applied and not q.clamp_applied:
        assert q.premium == q.raw_premium == q.band_premium + q.per_km_premium


@SETTINGS
@given(scores, scores, kms, st.none() | in_clamp)
def test_a_worse_score_never_costs_less(a, b, km, previous):
    lo, hi = sorted((a, b))
    assert quote(lo, km, previous_premium=previous).premium <= quote(hi, km, previous_premium=previous).premium


@SETTINGS
@given(scores)
def test_band_distances_point_at_the_band_edges(score):
    # Distances are rounded to 6 decimals, hence the 1e-6 step past them.
    q = quote(score, 0)
    band = next(b for b in DEFAULT_BANDS if b.name == q.band)
    if q.score_drop_to_better_band is not None:
        assert band_for(max(score - q.score_drop_to_better_band - 1e-6, 0)).name == q.better_band
    if q.score_rise_to_worse_band is not None:
        assert band_for(min(score + q.score_rise_to_worse_band + 1e-6, 100)).name == q.worse_band
        assert math.isclose(score + q.score_rise_to_worse_band, band.upper, abs_tol=1e-6)
