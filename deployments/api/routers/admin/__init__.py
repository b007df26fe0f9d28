"""`/api/v1/admin`: every route requires the admin role (router-level dependency)."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from deployments.api.auth import require_admin
from deployments.api.routers.admin import (
    analytics,
    claims,
    dashboard,
    devices,
    drivers,
    policies,
    telematics_import,
    users,
)
from deployments.api.routers.common import ADMIN_ERRORS

router = APIRouter(prefix="/api/v1/admin", dependencies=[Depends(require_admin)], responses=ADMIN_ERRORS)
for _module in (dashboard, drivers, policies, users, analytics, devices, telematics_import, claims):
    router.include_router(_module.router)
