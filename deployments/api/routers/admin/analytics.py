"""`/api/v1/admin/analytics`: risk distribution by band, trips per day, and fairness and drift (issue 16 item 4):
the population stability of the score and of each model input against the training population, score and premium
by cohort, calibration by score decile against the claims of the window. The math is domain/fairness.py, the
steps usecases/fairness.py (shared with the maintenance actor's gauges)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
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
from domain.fairness import PsiTable
from storage.files.model_artifacts import reference_loader
from storage.postgres import admin_queries
from storage.postgres.fairness_queries import PostgresFairnessReader
from storage.postgres.pool import acquire
from usecases.fairness import cohort_flagged, cohort_table, drift_report

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


def _since(days: int) -> datetime:
    return datetime.now(UTC) - timedelta(days=days)


def _psi_out(table: PsiTable, threshold: float, note: str | None = None) -> PsiOut:
    return PsiOut(name=table.name, psi=table.psi, drift=table.psi is not None and table.psi > threshold,
                  bins=[PsiBin(lower=lo, expected=e, actual=a)
                        for lo, e, a in zip(table.lowers, table.expected, table.actual, strict=True)], note=note)


@router.get("/drift", response_model=DriftOut,
            summary="Population stability of the score and of each model input against training")
async def drift(resources: ResourcesDep, days: WindowDays = 30) -> DriftOut:
    settings = resources.settings
    load = reference_loader(Path(settings.models_dir), settings.model_signing_key)
    async with acquire(resources.pool, settings) as conn:
        reader = PostgresFairnessReader(conn)
        report = await drift_report(reader, load, await reader.scored_drivers(_since(days)),
                                    settings.scoring_window_days)
    threshold = settings.drift_psi_alert
    score = _psi_out(report.score, threshold, None if report.drivers else "no driver was scored in the window")
    return DriftOut(days=days, drivers=report.drivers, threshold=threshold, score=score,
                    model_version=report.model_version, inputs_drivers=report.inputs_drivers,
                    inputs=[_psi_out(t, threshold) for t in report.inputs], note=report.note)


@router.get("/cohorts", response_model=CohortsOut, summary="Score and premium by cohort, as a ratio to the portfolio")
async def cohorts(resources: ResourcesDep, days: WindowDays = 30) -> CohortsOut:
    async with acquire(resources.pool, resources.settings) as conn:
        drivers = await PostgresFairnessReader(conn).scored_drivers(_since(days))
    low, high = resources.settings.cohort_ratio_low, resources.settings.cohort_ratio_high
    items = [CohortOut(**{f: getattr(s, f) for f in s.__slots__}, flagged=cohort_flagged(s, low, high))
             for s in cohort_table(drivers, datetime.now(UTC).date())]
    return CohortsOut(days=days, drivers=len(drivers), ratio_band=(low, high), items=items)


@router.get("/calibration", response_model=CalibrationListOut,
            summary="Expected against observed claims by score decile")
async def calibration(resources: ResourcesDep, days: WindowDays = 365) -> CalibrationListOut:
    async with acquire(resources.pool, resources.settings) as conn:
        rows = [d for d in await PostgresFairnessReader(conn).scored_drivers(_since(days)) if d.rate is not None]
    deciles = fairness.calibration_deciles([r.score for r in rows], [r.rate for r in rows],
                                           [r.claims for r in rows], days / 365.0)
    items = [CalibrationOut(decile=d.decile, drivers=d.drivers, mean_score=d.mean_score,
                            expected_claims=d.expected_claims, observed_claims=d.observed_claims,
                            observed_to_expected=d.observed_to_expected) for d in deciles]
    return CalibrationListOut(days=days, drivers=len(rows), items=items,
                              claims_source="claims opened by detected crashes, not rejected (FNOL table)")
