"""Fairness and drift (issue 16 item 4): population stability, cohorts, calibration. Pure numpy, no I/O, no clock.

- PSI = Σ (a_i − e_i) · ln(a_i / e_i) over bins, e = the reference (training) proportions, a = the recent ones.
  Each term is ≥ 0 (a − e and ln(a/e) share their sign), so PSI ≥ 0, and 0 exactly when the proportions agree.
  An empty bin would make ln infinite: proportions are floored at `PSI_EPSILON` (1e-4, i.e. one in 10,000) on
  both sides, which keeps identical distributions at 0 and bounds a bin's term by ≈ 9.2 · |a − e|.
  Reading (industry convention): < 0.1 stable, 0.1–0.2 moderate, > 0.2 significant drift.
- Bins are the reference's deciles (inner edges; a value equal to an edge goes to the upper bin).
- A cohort's ratio is its mean (score or premium) over the portfolio's mean; outside [0.8, 1.25] is flagged.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date

import msgspec
import numpy as np

PSI_EPSILON = 1e-4
DEFAULT_BINS = 10
AGE_BANDS = ((25, "<25"), (35, "25-34"), (50, "35-49"), (65, "50-64"), (200, "65+"))
# What an insured vehicle is used for: a term of the policy (policies.vehicle_use, migration 0016) and a cohort.
VEHICLE_USES = ("personal", "commute", "business", "rideshare")


def bin_edges(reference: Sequence[float] | np.ndarray, bins: int = DEFAULT_BINS) -> tuple[float, ...]:
    """The reference's inner quantile edges (bins − 1 at most; repeated values merge bins). Empty: no edges."""
    values = np.asarray(reference, dtype=np.float64)
    values = values[np.isfinite(values)]
    if values.size == 0 or bins < 2:
        return ()
    inner = np.quantile(values, np.linspace(0.0, 1.0, bins + 1)[1:-1])
    return tuple(float(x) for x in np.unique(inner))


def proportions(values: Sequence[float] | np.ndarray, edges: Sequence[float]) -> tuple[float, ...]:
    """Share of the finite `values` in each of the len(edges) + 1 bins; all zeros when there are none."""
    data = np.asarray(values, dtype=np.float64)
    data = data[np.isfinite(data)]
    counts = np.bincount(np.searchsorted(np.asarray(edges, dtype=np.float64), data, side="right"),
                         minlength=len(edges) + 1)
    return tuple(float(c) / data.size for c in counts) if data.size else tuple(0.0 for _ in counts)


def psi(expected: Sequence[float], actual: Sequence[float], epsilon: float = PSI_EPSILON) -> float:
    """Population stability index of `actual` against `expected` (proportions over the same bins)."""
    if len(expected) != len(actual):
        raise ValueError(f"PSI needs the same bins on both sides, got {len(expected)} and {len(actual)}")
    if not epsilon > 0:
        raise ValueError("epsilon must be > 0")
    total = 0.0
    for e, a in zip(expected, actual, strict=True):
        e, a = max(e, epsilon), max(a, epsilon)
        total += (a - e) * math.log(a / e)
    return max(total, 0.0)  # ≥ 0 term by term; the max only absorbs rounding


def age_band(date_of_birth: date | None, on: date) -> str:
    """The age band on `on` ("unknown" without a date of birth)."""
    if date_of_birth is None:
        return "unknown"
    age = on.year - date_of_birth.year - ((on.month, on.day) < (date_of_birth.month, date_of_birth.day))
    return next(label for upper, label in AGE_BANDS if age < upper)


def region_of(timezone: str | None) -> str:
    """The region of an IANA zone: its area ("Europe/Berlin" → "Europe"); "UTC" and the like → "other"."""
    if not timezone or "/" not in timezone:
        return "other"
    return timezone.split("/", 1)[0]


@dataclass(frozen=True, slots=True)
class CohortStat:
    """One cohort of one dimension: drivers, mean score and premium, and their ratio to the portfolio's means
    (None where the cohort or the portfolio has no value)."""

    dimension: str
    cohort: str
    drivers: int
    mean_score: float | None
    mean_premium: float | None
    score_ratio: float | None
    premium_ratio: float | None


def _mean(values: Iterable[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return sum(known) / len(known) if known else None


def _ratio(part: float | None, whole: float | None) -> float | None:
    return None if part is None or not whole else part / whole


def cohort_stats(members: Sequence[Mapping[str, str]], scores: Sequence[float | None],
                 premiums: Sequence[float | None]) -> list[CohortStat]:
    """Per dimension and cohort (sorted), the means and their ratio to the portfolio. `members[i]` maps each
    dimension to driver i's cohort."""
    portfolio_score, portfolio_premium = _mean(scores), _mean(premiums)
    groups: dict[tuple[str, str], list[int]] = {}
    for i, member in enumerate(members):
        for dimension, cohort in member.items():
            groups.setdefault((dimension, cohort), []).append(i)
    out = []
    for (dimension, cohort), rows in sorted(groups.items()):
        score, premium = _mean(scores[i] for i in rows), _mean(premiums[i] for i in rows)
        out.append(CohortStat(dimension, cohort, len(rows), score, premium, _ratio(score, portfolio_score),
                              _ratio(premium, portfolio_premium)))
    return out


def ratio_out_of_band(ratio: float | None, low: float, high: float) -> bool:
    return ratio is not None and not low <= ratio <= high


@dataclass(frozen=True, slots=True)
class CalibrationDecile:
    """Drivers of one score decile: expected claims (Σ rate × exposure years) against the claims observed."""

    decile: int
    drivers: int
    mean_score: float
    expected_claims: float
    observed_claims: int

    @property
    def observed_to_expected(self) -> float | None:
        return None if self.expected_claims <= 0 else self.observed_claims / self.expected_claims


def calibration_deciles(scores: Sequence[float], rates: Sequence[float], claims: Sequence[int],
                        exposure_years: float) -> list[CalibrationDecile]:
    """Drivers sorted by score (ties by input order) cut into 10 near-equal groups (fewer with < 10 drivers)."""
    if not (len(scores) == len(rates) == len(claims)):
        raise ValueError("scores, rates and claims need one value per driver")
    order = sorted(range(len(scores)), key=lambda i: (scores[i], i))
    groups = [g for g in np.array_split(np.asarray(order, dtype=np.int64), min(10, len(order))) if g.size] \
        if order else []
    return [
        CalibrationDecile(
            decile=k + 1, drivers=int(g.size), mean_score=float(np.mean([scores[i] for i in g])),
            expected_claims=float(sum(rates[i] for i in g) * exposure_years),
            observed_claims=int(sum(claims[i] for i in g)),
        )
        for k, g in enumerate(groups)
    ]


class ReferenceBins(msgspec.Struct, frozen=True):
    """One quantity's training distribution: inner bin edges and the share of the training drivers in each of
    the len(edges) + 1 bins. Stored per model input in the artifact's spec (`ModelSpec.input_reference`)."""

    name: str
    edges: tuple[float, ...]
    proportions: tuple[float, ...]

    def __post_init__(self) -> None:
        if len(self.proportions) != len(self.edges) + 1:
            raise ValueError(f"{self.name}: {len(self.edges)} edges need {len(self.edges) + 1} proportions")


def reference_bins(names: Sequence[str], matrix: np.ndarray, bins: int = DEFAULT_BINS) -> tuple[ReferenceBins, ...]:
    """Per column of `matrix` (one row per training driver, columns named by `names`): its deciles and shares."""
    x = np.asarray(matrix, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != len(names):
        raise ValueError(f"expected a matrix of {len(names)} columns, got shape {x.shape}")
    out = []
    for j, name in enumerate(names):
        edges = bin_edges(x[:, j], bins)
        out.append(ReferenceBins(name, edges, proportions(x[:, j], edges)))
    return tuple(out)


@dataclass(frozen=True, slots=True)
class PsiTable:
    """One quantity's PSI against its reference: None without recent values. `lowers[i]` is bin i's lower edge
    (None: unbounded)."""

    name: str
    psi: float | None
    lowers: tuple[float | None, ...]
    expected: tuple[float, ...]
    actual: tuple[float, ...]


def psi_table(reference: ReferenceBins, values: Sequence[float] | np.ndarray) -> PsiTable:
    """The recent `values` binned on the reference's edges, and their PSI (None when there are none)."""
    data = np.asarray(values, dtype=np.float64)
    actual = proportions(data, reference.edges)
    value = psi(reference.proportions, actual) if np.isfinite(data).any() else None
    return PsiTable(reference.name, value, (None, *reference.edges), reference.proportions, actual)


# The score's training reference needs no stored histogram: a score is the percentile of the rate among the
# training portfolio's predicted rates (docs/MODEL.md §3), so the training population's scores fill the ten
# deciles of [0, 100] equally by construction.
SCORE_EDGES: tuple[float, ...] = tuple(float(x) for x in range(10, 100, 10))
SCORE_REFERENCE: tuple[float, ...] = (0.1,) * 10
SCORE_BINS = ReferenceBins("score", SCORE_EDGES, SCORE_REFERENCE)
