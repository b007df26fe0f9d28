"""`/api/v1/admin/analytics`: risk distribution by band, trips per day, and fairness and drift (issue 16 item 4):
the score's population stability against the training population, score and premium by cohort, calibration by
score decile against the claims of the window. The math is domain/fairness.py; the rows one statement."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query

from deployments.api.routers.common import ResourcesDep
from deployments.api.schemas_admin import (
    BandCount,
    CalibrationListOut,
    CalibrationOut,
    CohortOut,
    CohortsOut,
    DriftOut,
    PsiBin,
    PsiOut,
    RiskDistributionOut,
    TripsDailyOut,
    TripsDay,
)
from domain import fairness
from storage.postgres import admin_queries, fairness_queries
from storage.postgres.pool import acquire

router = APIRouter(prefix="/analytics", tags=["admin: analytics"])


@router.get("/risk-distribution", response_model=RiskDistributionOut, summary="Drivers per band of their latest score")
async def risk_distribution(resources: ResourcesDep) -> RiskDistributionOut:
    async with acquire(resources.pool, resources.settings) as conn:
        rows = await admin_queries.risk_distribution(conn)
    return RiskDistributionOut(items=[BandCount.model_validate(dict(r)) for r in rows])


@router.get("/trips-daily", response_model=TripsDailyOut, summary="Trips, drivers, km and harsh events per UTC day")
async def trips_daily(
    resources: ResourcesDep, days: Annotated[int, Query(ge=1, le=366, description="days back from today")] = 30
) -> TripsDailyOut:
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    async with acquire(resources.pool, resources.settings) as conn:
        rows = await admin_queries.trips_daily(conn, today - timedelta(days=days - 1))
    return TripsDailyOut(days=days, items=[TripsDay.model_validate(dict(r)) for r in rows])


WindowDays = Annotated[int, Query(ge=1, le=366, description="the last N days (drivers scored in them)")]
NO_INPUT_REFERENCE = ("the model artifact keeps no histogram of its training inputs yet: the inputs' PSI needs "
                      "reference bins stored at training (not built yet)")


async def _window(resources, days: int) -> list:
    since = datetime.now(UTC) - timedelta(days=days)
    async with acquire(resources.pool, resources.settings) as conn:
        return await fairness_queries.driver_window(conn, since)


@router.get("/drift", response_model=DriftOut, summary="Population stability of the score against training")
async def drift(resources: ResourcesDep, days: WindowDays = 30) -> DriftOut:
    rows = await _window(resources, days)
    threshold = resources.settings.drift_psi_alert
    actual = fairness.proportions([r["score"] for r in rows], fairness.SCORE_EDGES)
    value = fairness.psi(fairness.SCORE_REFERENCE, actual) if rows else None
    lowers = (None, *fairness.SCORE_EDGES)
    score = PsiOut(name="score", psi=value, drift=value is not None and value > threshold,
                   bins=[PsiBin(lower=lo, expected=e, actual=a)
                         for lo, e, a in zip(lowers, fairness.SCORE_REFERENCE, actual, strict=True)],
                   note=None if rows else "no driver was scored in the window")
    inputs = [PsiOut(name="model inputs", psi=None, drift=False, bins=[], note=NO_INPUT_REFERENCE)]
    return DriftOut(days=days, drivers=len(rows), threshold=threshold, score=score, inputs=inputs)


@router.get("/cohorts", response_model=CohortsOut, summary="Score and premium by cohort, as a ratio to the portfolio")
async def cohorts(resources: ResourcesDep, days: WindowDays = 30) -> CohortsOut:
    rows = await _window(resources, days)
    today = datetime.now(UTC).date()
    members = [{"age_band": fairness.age_band(r["date_of_birth"], today), "region": fairness.region_of(r["timezone"])}
               for r in rows]
    stats = fairness.cohort_stats(members, [r["score"] for r in rows], [r["premium"] for r in rows])
    low, high = resources.settings.cohort_ratio_low, resources.settings.cohort_ratio_high
    items = [CohortOut(**{f: getattr(s, f) for f in s.__slots__},
                       flagged=fairness.ratio_out_of_band(s.score_ratio, low, high)
                       or fairness.ratio_out_of_band(s.premium_ratio, low, high)) for s in stats]
    return CohortsOut(days=days, drivers=len(rows), ratio_band=(low, high), items=items)


@router.get("/calibration", response_model=CalibrationListOut,
            summary="Expected against observed claims by score decile")
async def calibration(resources: ResourcesDep, days: WindowDays = 365) -> CalibrationListOut:
    rows = [r for r in await _window(resources, days) if r["rate"] is not None]
    deciles = fairness.calibration_deciles([r["score"] for r in rows], [r["rate"] for r in rows],
                                           [r["claims"] for r in rows], days / 365.0)
    items = [CalibrationOut(decile=d.decile, drivers=d.drivers, mean_score=d.mean_score,
                            expected_claims=d.expected_claims, observed_claims=d.observed_claims,
                            observed_to_expected=d.observed_to_expected) for d in deciles]
    return CalibrationListOut(days=days, drivers=len(rows), items=items,
                              claims_source="claims opened by detected crashes, not rejected (FNOL table)")
