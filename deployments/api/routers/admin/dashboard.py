"""`GET /api/v1/admin/dashboard`: fleet counts in one statement of cheap sub-selects."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter

from deployments.api.routers.common import ResourcesDep
from deployments.api.schemas_admin import DashboardOut
from storage.postgres import admin_queries
from storage.postgres.pool import acquire

router = APIRouter(tags=["admin: dashboard"])


@router.get("/dashboard", response_model=DashboardOut, summary="Fleet counts")
async def dashboard(resources: ResourcesDep) -> DashboardOut:
    now = datetime.now(UTC)
    async with acquire(resources.pool, resources.settings) as conn:
        row = await admin_queries.dashboard_counts(conn, now)
    return DashboardOut(**dict(row), as_of=now)
