"""`/api/v1/trips/{trip_id}`: one trip, if it belongs to the caller (or the caller is an admin)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter

from deployments.api.auth import CurrentPrincipal
from deployments.api.routers.common import ERRORS, ServicesDep, not_found
from deployments.api.schemas import TripOut
from storage.postgres import read_models
from storage.postgres.pool import acquire

router = APIRouter(prefix="/api/v1/trips", tags=["trips"], responses=ERRORS)


@router.get("/{trip_id}", response_model=TripOut, summary="One trip")
async def get_trip(trip_id: uuid.UUID, principal: CurrentPrincipal, services: ServicesDep) -> TripOut:
    async with acquire(services.pool, services.settings) as conn:
        row = await read_models.get_trip(conn, trip_id)
    if row is None or not principal.may_read(row["driver_id"]):
        raise not_found(f"trip {trip_id}")
    return TripOut.model_validate(dict(row))
