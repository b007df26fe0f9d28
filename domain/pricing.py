"""Premium from a 0–100 risk score: bands, a per-km part, a per-period change cap and a clamp. Pure.

    raw     = round(base × band multiplier) + round(per_km_rate × annual_km)
    capped  = min(max(raw, ⌈prev × (1 − cap)⌉), ⌊prev × (1 + cap)⌋)     (only with a previous premium)
    premium = min(max(capped, min_premium), max_premium)

Money is `Decimal`, in currency units with 2 decimals. Rounding happens in exactly three places:
the band part and the per-km part are each rounded to the cent with ROUND_HALF_EVEN; the cap bounds
are rounded *inward* to the cent (lower bound up, upper bound down) so a capped premium never moves
more than the cap. The clamp bounds are whole cents by validation, so the result is always cents.
The clamp wins over the cap: if the previous premium lies outside [min, max] (the rules changed),
the premium goes to the clamp. With a previous premium inside the clamp, both guardrails hold.
A lower score is a lower risk: band A (0–20) is the best.
"""

from __future__ import annotations

import math
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal

import msgspec

CENT = Decimal("0.01")
SCORE_MIN, SCORE_MAX = 0.0, 100.0


class Band(msgspec.Struct, frozen=True):
    """Scores in [lower, upper) — the last band also takes `upper` (100) — pay `multiplier` × base."""

    name: str
    lower: float
    upper: float
    multiplier: Decimal


DEFAULT_BANDS: tuple[Band, ...] = (
    Band("A", 0.0, 20.0, Decimal("0.80")),
    Band("B", 20.0, 40.0, Decimal("0.90")),
    Band("C", 40.0, 60.0, Decimal("1.00")),
    Band("D", 60.0, 80.0, Decimal("1.20")),
    Band("E", 80.0, 100.0, Decimal("1.50")),
)


class PricingRules(msgspec.Struct, frozen=True, kw_only=True):
    """Tariff and guardrails. Money in `currency` units; `max_change_ratio` is per pricing period."""

    base_annual_premium: Decimal = Decimal("600.00")
    bands: tuple[Band, ...] = DEFAULT_BANDS
    per_km_rate: Decimal = Decimal("0.02")  # per annualized km
    max_change_ratio: Decimal = Decimal("0.15")  # ±15 % vs the previous premium
    min_premium: Decimal = Decimal("250.00")
    max_premium: Decimal = Decimal("5000.00")
    currency: str = "EUR"

    def __post_init__(self) -> None:
        if not self.bands:
            raise ValueError("pricing rules need at least one band")
        if self.bands[0].lower != SCORE_MIN or self.bands[-1].upper != SCORE_MAX:
            raise ValueError(f"bands must cover {SCORE_MIN:g}–{SCORE_MAX:g}")
        for a, b in zip(self.bands, self.bands[1:], strict=False):
            if a.upper != b.lower:
                raise ValueError(f"bands {a.name} and {b.name} must be contiguous ({a.upper} ≠ {b.lower})")
        for band in self.bands:
            if not band.lower < band.upper:
                raise ValueError(f"band {band.name} is empty: {band.lower}–{band.upper}")
            if not band.multiplier > 0:
                raise ValueError(f"band {band.name} multiplier must be > 0, got {band.multiplier}")
        if not self.base_annual_premium > 0 or self.per_km_rate < 0:
            raise ValueError("base_annual_premium must be > 0 and per_km_rate ≥ 0")
        if not Decimal(0) < self.max_change_ratio < Decimal(1):
            raise ValueError(f"max_change_ratio must be in (0, 1), got {self.max_change_ratio}")
        for name in ("min_premium", "max_premium"):
            value = getattr(self, name)
            if value != value.quantize(CENT) or value <= 0:
                raise ValueError(f"{name} must be a positive amount in whole cents, got {value}")
        if self.min_premium > self.max_premium:
            raise ValueError(f"min_premium {self.min_premium} > max_premium {self.max_premium}")


DEFAULT_RULES = PricingRules()


class Quote(msgspec.Struct, frozen=True, kw_only=True):
    """A priced score: band, breakdown, guardrails applied, and the forecast to the neighbour bands.

    `score_drop_to_better_band`: the score must fall by more than this to enter the better band;
    `score_rise_to_worse_band`: a rise of this much enters the worse band. None at the ends.
    Both are rounded to 6 decimals (23.2 → 3.2, not 3.1999999999999993).
    """

    score: float
    band: str
    band_multiplier: Decimal
    base_premium: Decimal
    band_premium: Decimal  # base × multiplier, to the cent
    annual_km: float
    per_km_rate: Decimal
    per_km_premium: Decimal  # rate × annual_km, to the cent
    raw_premium: Decimal  # band_premium + per_km_premium
    previous_premium: Decimal | None
    cap_applied: bool
    cap_direction: str | None  # "increase" (held down) | "decrease" (held up) | None
    clamp_applied: bool
    premium: Decimal
    currency: str
    better_band: str | None
    score_drop_to_better_band: float | None
    premium_at_better_band: Decimal | None
    saving_at_better_band: Decimal | None
    worse_band: str | None
    score_rise_to_worse_band: float | None
    premium_at_worse_band: Decimal | None


def _number(value: object, name: str) -> float:
    if isinstance(value, bool | str | bytes):
        raise ValueError(f"{name} must be a number, got {type(value).__name__}")
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {type(value).__name__}") from None


def _check_score(score: float) -> float:
    s = _number(score, "risk score")
    if not (math.isfinite(s) and SCORE_MIN <= s <= SCORE_MAX):
        raise ValueError(f"risk score must be within {SCORE_MIN:g}–{SCORE_MAX:g}, got {score!r}")
    return s


def _check_km(annual_km: float) -> Decimal:
    km = _number(annual_km, "annual_km")
    if not (math.isfinite(km) and km >= 0):
        raise ValueError(f"annual_km must be a finite number ≥ 0, got {annual_km!r}")
    return annual_km if isinstance(annual_km, Decimal) else Decimal(repr(km))


def _check_previous(previous: Decimal | None) -> Decimal | None:
    if previous is None:
        return None
    if not isinstance(previous, Decimal) or not previous.is_finite() or previous <= 0:
        raise ValueError(f"previous_premium must be a positive finite Decimal or None, got {previous!r}")
    return previous


def band_index(score: float, rules: PricingRules = DEFAULT_RULES) -> int:
    """Index in `rules.bands` of the band containing `score` (validated 0–100)."""
    s = _check_score(score)
    for i, band in enumerate(rules.bands):
        if s < band.upper:
            return i
    return len(rules.bands) - 1  # s == 100


def band_for(score: float, rules: PricingRules = DEFAULT_RULES) -> Band:
    return rules.bands[band_index(score, rules)]


class _Priced(msgspec.Struct, frozen=True):
    band_premium: Decimal
    per_km_premium: Decimal
    raw: Decimal
    premium: Decimal
    cap_direction: str | None
    clamp_applied: bool


def _price(band: Band, km: Decimal, previous: Decimal | None, rules: PricingRules) -> _Priced:
    band_part = (rules.base_annual_premium * band.multiplier).quantize(CENT, ROUND_HALF_EVEN)
    km_part = (rules.per_km_rate * km).quantize(CENT, ROUND_HALF_EVEN)
    raw = band_part + km_part
    capped, direction = raw, None
    if previous is not None:
        lo = (previous * (1 - rules.max_change_ratio)).quantize(CENT, ROUND_CEILING)
        hi = (previous * (1 + rules.max_change_ratio)).quantize(CENT, ROUND_FLOOR)
        if raw > hi:
            capped, direction = hi, "increase"
        elif raw < lo:
            capped, direction = lo, "decrease"
    premium = min(max(capped, rules.min_premium), rules.max_premium)
    return _Priced(band_part, km_part, raw, premium, direction, premium != capped)


def quote(
    score: float, annual_km: float, *, previous_premium: Decimal | None = None, rules: PricingRules = DEFAULT_RULES
) -> Quote:
    """Price `score` (0–100, lower is safer) for `annual_km`, capped against `previous_premium`. Pure.

    Raises ValueError (with the offending value) for a score outside 0–100 or not finite, a
    negative or non-finite annual_km, or a non-positive previous premium.
    """
    s = _check_score(score)
    km = _check_km(annual_km)
    prev = _check_previous(previous_premium)
    i = band_index(s, rules)
    band = rules.bands[i]
    here = _price(band, km, prev, rules)
    better = rules.bands[i - 1] if i > 0 else None
    worse = rules.bands[i + 1] if i + 1 < len(rules.bands) else None
    at_better = _price(better, km, prev, rules).premium if better else None
    at_worse = _price(worse, km, prev, rules).premium if worse else None
    return Quote(
        score=s,
        band=band.name,
        band_multiplier=band.multiplier,
        base_premium=rules.base_annual_premium,
        band_premium=here.band_premium,
        annual_km=float(annual_km),
        per_km_rate=rules.per_km_rate,
        per_km_premium=here.per_km_premium,
        raw_premium=here.raw,
        previous_premium=prev,
        cap_applied=here.cap_direction is not None,
        cap_direction=here.cap_direction,
        clamp_applied=here.clamp_applied,
        premium=here.premium,
        currency=rules.currency,
        better_band=better.name if better else None,
        score_drop_to_better_band=round(s - band.lower, 6) if better else None,
        premium_at_better_band=at_better,
        saving_at_better_band=here.premium - at_better if at_better is not None else None,
        worse_band=worse.name if worse else None,
        score_rise_to_worse_band=round(band.upper - s, 6) if worse else None,
        premium_at_worse_band=at_worse,
    )
