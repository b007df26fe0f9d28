"""`/api/v1/trips/{trip_id}` and its `/events` and `/route`: one trip, if it belongs to the caller (or the caller
is an admin); another driver's trip is the same 404 as an unknown one."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response

from deployments.api.auth import CurrentPrincipal
from deployments.api.routers.common import ERRORS, JSON, PageParams, ResourcesDep, json_body, not_found
from deployments.api.schemas import EpisodeOut, Page, TripOut, TripRouteOut

router = APIRouter(prefix="/api/v1/trips", tags=["trips"], responses=ERRORS)


@router.get("/{trip_id}", response_model=TripOut, summary="One trip")
async def get_trip(trip_id: uuid.UUID, principal: CurrentPrincipal, resources: ResourcesDep) -> Response:
    found = await resources.queries.trip(trip_id)
    if found is None or not principal.may_read(found[0]):
        raise not_found(f"trip {trip_id}")
    return Response(content=found[1], media_type=JSON)


@router.get("/{trip_id}/events", response_model=Page[EpisodeOut], summary="A trip's episodes, by start time")
async def get_trip_events(trip_id: uuid.UUID, principal: CurrentPrincipal, resources: ResourcesDep,
                          paging: PageParams) -> Response:
    body = await resources.queries.trip_episodes(trip_id, paging.page, paging.page_size, principal.may_read)
    return json_body(body, f"trip {trip_id}")


@router.get("/{trip_id}/route", response_model=TripRouteOut,
            summary="A trip's route: a simplified GeoJSON LineString Feature")
async def get_trip_route(trip_id: uuid.UUID, principal: CurrentPrincipal, resources: ResourcesDep) -> Response:
    return json_body(await resources.queries.trip_route(trip_id, principal.may_read), f"trip {trip_id}")
