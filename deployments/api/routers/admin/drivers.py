"""`/api/v1/admin/drivers`: list, create, read, patch, delete driver profiles. Writes invalidate the
driver's cached reads on every replica (usecases.admin)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from deployments.api.auth import CurrentPrincipal
from deployments.api.routers.common import DriverIdPath, PageParams, ResourcesDep, not_found
from deployments.api.schemas import DriverOut, ErrorOut, Page, page_offset
from deployments.api.schemas_admin import DriverCreate, DriverPatch
from deployments.api.schemas_privacy import ErasureIn, ErasureOut, privacy_out
from usecases.privacy import Actor

router = APIRouter(prefix="/drivers", tags=["admin: drivers"])
CONFLICT = {409: {"model": ErrorOut, "description": "duplicate id/email, or the driver still has a login/policies"}}


@router.get("", response_model=Page[DriverOut], summary="Drivers by id")
async def list_drivers(
    resources: ResourcesDep, paging: PageParams, is_active: Annotated[bool | None, Query()] = None
) -> Page[DriverOut]:
    total, rows = await resources.admin.list_drivers(
        paging.page_size, page_offset(paging.page, paging.page_size), is_active
    )
    items = [DriverOut.model_validate(dict(r)) for r in rows]
    return Page[DriverOut](items=items, page=paging.page, page_size=paging.page_size, total=total)


@router.post("", response_model=DriverOut, status_code=status.HTTP_201_CREATED, responses=CONFLICT,
             summary="Create a driver")
async def create_driver(body: DriverCreate, resources: ResourcesDep) -> DriverOut:
    row = await resources.admin.create_driver(body.driver_id, body.model_dump(exclude={"driver_id"}))
    return DriverOut.model_validate(dict(row))


@router.get("/{driver_id}", response_model=DriverOut, summary="One driver")
async def get_driver(driver_id: DriverIdPath, resources: ResourcesDep) -> DriverOut:
    row = await resources.admin.get_driver(driver_id)
    if row is None:
        raise not_found(f"driver {driver_id!r}")
    return DriverOut.model_validate(dict(row))


@router.patch("/{driver_id}", response_model=DriverOut, responses=CONFLICT, summary="Change some fields")
async def patch_driver(driver_id: DriverIdPath, body: DriverPatch, resources: ResourcesDep) -> DriverOut:
    changes = body.model_dump(exclude_unset=True)
    row = await resources.admin.update_driver(driver_id, changes)
    if row is None:
        raise not_found(f"driver {driver_id!r}")
    if "is_active" in changes:  # its devices' keys are refused (or accepted again) from now, on every replica
        await resources.devices.driver_changed(driver_id)
    return DriverOut.model_validate(dict(row))


@router.delete("/{driver_id}", status_code=status.HTTP_204_NO_CONTENT, responses=CONFLICT, summary="Delete a driver")
async def delete_driver(driver_id: DriverIdPath, resources: ResourcesDep) -> Response:
    if not await resources.admin.delete_driver(driver_id):
        raise not_found(f"driver {driver_id!r}")
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{driver_id}/erasure", response_model=ErasureOut,
             summary="Erase a driver's personal data on request (idempotent; docs/PRIVACY.md)")
async def erase_driver(driver_id: DriverIdPath, body: ErasureIn, principal: CurrentPrincipal,
                       resources: ResourcesDep) -> ErasureOut:
    done = await resources.privacy.erase(driver_id, body.reason, Actor(principal.user_id, principal.role))
    if done is None:
        raise not_found(f"driver {driver_id!r}")
    s = done.scrubbed
    return ErasureOut(**privacy_out(done.state).model_dump(), already_erased=s is None,
                      readings_deleted=s.readings if s else 0, events_scrubbed=s.events if s else 0,
                      snapshots_deleted=s.snapshots if s else 0)
