"""`/api/v1/trips/{trip_id}`: one trip, if it belongs to the caller (or the caller is an admin)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response

from deployments.api.auth import CurrentPrincipal
from deployments.api.routers.common import ERRORS, JSON, ResourcesDep, not_found
from deployments.api.schemas import TripOut

router = APIRouter(prefix="/api/v1/trips", tags=["trips"], responses=ERRORS)


@router.get("/{trip_id}", response_model=TripOut, summary="One trip")
async def get_trip(trip_id: uuid.UUID, principal: CurrentPrincipal, resources: ResourcesDep) -> Response:
    found = await resources.queries.trip(trip_id)
    if found is None or not principal.may_read(found[0]):
        raise not_found(f"trip {trip_id}")
    return Response(content=found[1], media_type=JSON)
