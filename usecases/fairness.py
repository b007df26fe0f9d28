"""Fairness and drift (issue 16 item 4) over a FairnessReader: the admin analytics routes and the maintenance
actor's DRIFT task both call these, so a gauge and the page an operator opens from its alert agree.

- The score's PSI: each scored driver's latest score against training's uniform deciles (`fairness.SCORE_BINS`).
- Each model input's PSI: the inputs the model saw for that latest score, recomputed from the trips of its window
  with the scorer's own function (`domain.scoring.window_features`) and kept only when they hash to the
  `feature_hash` the score recorded (proof they are the same numbers), against the deciles the artifact kept
  at training (`ModelSpec.input_reference`). Nothing else is stored per score: the trips are the record.
- Cohorts: age band, region, vehicle use; mean score and premium as a ratio to the portfolio's.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np

from domain import fairness
from domain.fairness import CohortStat, PsiTable
from domain.features import FEATURE_NAMES
from domain.risk_model.inputs import MODEL_INPUTS, raw_inputs
from domain.scoring import window_features, window_start_ms
from usecases.ports.fairness import FairnessReader, ReferenceLoader, ScoredDriver
from usecases.ports.score_store import TripSpan

TRIP_CHUNK = 500  # drivers whose score windows load at once: bounds one query's rows and this process's memory


@dataclass(frozen=True, slots=True)
class DriftReport:
    """`drivers` scored in the window; `inputs_drivers` of them whose recomputed features matched their score's
    hash (the inputs' PSI is over those); `inputs` empty when the reference has none (`note` says why)."""

    drivers: int
    score: PsiTable
    model_version: str | None
    inputs_drivers: int
    inputs: tuple[PsiTable, ...]
    note: str | None


async def drift_report(reader: FairnessReader, load_reference: ReferenceLoader, drivers: Sequence[ScoredDriver],
                       window_days: float) -> DriftReport:
    """PSI of the score and of every model input between training and `drivers` (`reader.scored_drivers`). The
    inputs' training side is the artifact of the model in force: the version most of those latest scores carry."""
    score = fairness.psi_table(fairness.SCORE_BINS, [d.score for d in drivers])
    if not drivers:
        return DriftReport(0, score, None, 0, (), "no driver was scored in the window")
    reference = await load_reference(model_in_force(drivers))
    if reference.inputs is None:
        return DriftReport(len(drivers), score, reference.model_version, 0, (), reference.note)
    raw, mismatched = await live_inputs(reader, drivers, window_days)
    column = {name: j for j, name in enumerate(MODEL_INPUTS)}
    inputs = tuple(fairness.psi_table(ref, raw[:, column[ref.name]]) for ref in reference.inputs
                   if ref.name in column)
    note = None if not mismatched else (
        f"{mismatched} of {len(drivers)} drivers' recomputed features no longer hash to what their score recorded "
        "(trips erased, or SCORING_WINDOW_DAYS changed): left out of the inputs' PSI")
    return DriftReport(len(drivers), score, reference.model_version, len(raw), inputs, note)


async def live_inputs(reader: FairnessReader, drivers: Sequence[ScoredDriver],
                      window_days: float) -> tuple[np.ndarray, int]:
    """(the raw model inputs, one row per driver whose features recompute to their score's hash; how many did not)."""
    rows: list[np.ndarray] = []
    mismatched = 0
    for first in range(0, len(drivers), TRIP_CHUNK):
        chunk = drivers[first:first + TRIP_CHUNK]
        spans = [TripSpan(d.driver_id, window_start_ms(d.scored_at_ms, window_days), d.scored_at_ms) for d in chunk]
        trips = await reader.trips(spans)
        for d in chunk:
            features = window_features(trips.get(d.driver_id, []), d.scored_at_ms, window_days)
            if features.feature_hash() == d.feature_hash:
                rows.append(features.to_vector())
            else:
                mismatched += 1
    matrix = np.array(rows, dtype=np.float64).reshape(len(rows), len(FEATURE_NAMES))
    return raw_inputs(matrix), mismatched


def model_in_force(drivers: Sequence[ScoredDriver]) -> str:
    """The model version most drivers' latest score carries (ties: the greatest name); `drivers` not empty."""
    counts = Counter(d.model_version for d in drivers)
    return max(counts, key=lambda version: (counts[version], version))


def cohort_table(drivers: Sequence[ScoredDriver], today: date) -> list[CohortStat]:
    """Per cohort of age band (date of birth on `today`), region (time zone) and vehicle use (the active policy's;
    "unknown" without one): drivers, mean score and premium, and their ratios to the portfolio."""
    members = [{"age_band": fairness.age_band(d.date_of_birth, today), "region": fairness.region_of(d.timezone),
                "vehicle_use": d.vehicle_use or "unknown"} for d in drivers]
    return fairness.cohort_stats(members, [d.score for d in drivers], [d.premium for d in drivers])


def cohort_flagged(stat: CohortStat, low: float, high: float) -> bool:
    """The cohort's mean score or premium is outside [low, high] × the portfolio's."""
    return fairness.ratio_out_of_band(stat.score_ratio, low, high) or \
        fairness.ratio_out_of_band(stat.premium_ratio, low, high)


@dataclass(frozen=True, slots=True)
class DriftRules:
    """The maintenance DRIFT task's window and thresholds (settings DRIFT_*, COHORT_*; docs/OPERATIONS.md)."""

    window_days: int = 30
    scoring_window_days: float = 365.0
    psi_alert: float = 0.2
    ratio_low: float = 0.8
    ratio_high: float = 1.25
    min_drivers: int = 100
    cohort_min_drivers: int = 30


@dataclass(frozen=True, slots=True)
class DriftGauges:
    """What the maintenance actor exports. `UNKNOWN` (−1, below any PSI or ratio) when there is no reference, no
    value, or fewer drivers than the rules' minimum: it overwrites a last run's stale number, and the alert rules
    skip negatives. Not NaN: Ray's exporter drops a NaN sample, which would leave the stale number in place."""

    drivers: int
    score_psi: float
    feature_psi: dict[str, float]  # every MODEL_INPUTS name
    cohort_score_ratio: dict[tuple[str, str], float]  # (dimension, cohort)
    cohort_premium_ratio: dict[tuple[str, str], float]
    psi_threshold: float
    ratio_low: float
    ratio_high: float


UNKNOWN = -1.0


def _known(value: float | None, enough: bool) -> float:
    return UNKNOWN if value is None or not enough else float(value)


def drift_gauges(report: DriftReport, cohorts: Sequence[CohortStat], rules: DriftRules) -> DriftGauges:
    """Gauge values of one DRIFT run: bounded labels (inputs, cohorts of three dimensions), never a driver."""
    enough = report.drivers >= rules.min_drivers
    psi_of = {t.name: t.psi for t in report.inputs}
    return DriftGauges(
        drivers=report.drivers,
        score_psi=_known(report.score.psi, enough),
        feature_psi={name: _known(psi_of.get(name), enough) for name in MODEL_INPUTS},
        cohort_score_ratio={(c.dimension, c.cohort): _known(c.score_ratio, c.drivers >= rules.cohort_min_drivers)
                            for c in cohorts},
        cohort_premium_ratio={(c.dimension, c.cohort): _known(c.premium_ratio, c.drivers >= rules.cohort_min_drivers)
                              for c in cohorts},
        psi_threshold=rules.psi_alert, ratio_low=rules.ratio_low, ratio_high=rules.ratio_high,
    )
