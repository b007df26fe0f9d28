"""`POST /api/v1/admin/telematics/import`: the admin import of readings (docs/SECURITY.md §6). The ingest route's
answers and checks, without its backdating window: only retention and the future skew limit the time, so a
device's archive or a migrated fleet's history can be loaded. Admin only (the admin router's dependency)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from config.rules import validation_rules
from deployments.api.routers.common import ResourcesDep
from deployments.api.routers.telematics import IMPORT_OPENAPI, ingest
from domain.ingest_caller import IngestCaller

router = APIRouter(prefix="/telematics", tags=["admin: telematics"])


@router.post("/import", status_code=202, summary="Import readings of any age within retention",
             openapi_extra=IMPORT_OPENAPI)
async def import_events(request: Request, resources: ResourcesDep) -> JSONResponse:
    return await ingest(request, resources, IngestCaller("admin", None), validation_rules(resources.settings))
