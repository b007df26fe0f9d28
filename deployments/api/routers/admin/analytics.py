"""`/api/v1/admin/analytics`: risk distribution by band, trips per day."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query

from deployments.api.routers.common import ResourcesDep
from deployments.api.schemas_admin import BandCount, RiskDistributionOut, TripsDailyOut, TripsDay
from storage.postgres import admin_queries
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
