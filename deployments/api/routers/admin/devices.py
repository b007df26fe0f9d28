"""`/api/v1/admin/devices`: register a device for a driver (its key shown once), list, read, revoke, rotate the key
(usecases.devices; docs/SECURITY.md §6). Revoking and rotating take effect on every replica within the cache's
invalidation bound."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, status

from deployments.api.routers.common import PageParams, ResourcesDep, not_found
from deployments.api.schemas import DRIVER_ID_PATTERN, ErrorOut, Page, page_offset
from deployments.api.schemas_devices import DeviceCreate, DeviceKeyOut, DeviceOut

router = APIRouter(prefix="/devices", tags=["admin: devices"])
REVOKED = {409: {"model": ErrorOut, "description": "the device is revoked: register a new one"}}


@router.get("", response_model=Page[DeviceOut], summary="Devices by driver")
async def list_devices(
    resources: ResourcesDep,
    paging: PageParams,
    driver_id: Annotated[str | None, Query(pattern=DRIVER_ID_PATTERN)] = None,
    include_revoked: Annotated[bool, Query(description="also list revoked devices")] = False,
) -> Page[DeviceOut]:
    total, rows = await resources.devices.list_devices(
        paging.page_size, page_offset(paging.page, paging.page_size), driver_id, include_revoked)
    return Page[DeviceOut](items=[DeviceOut.of(r) for r in rows], page=paging.page, page_size=paging.page_size,
                           total=total)


@router.post("", response_model=DeviceKeyOut, status_code=status.HTTP_201_CREATED,
             summary="Register a device for a driver; its key is in this answer only")
async def register_device(body: DeviceCreate, resources: ResourcesDep) -> DeviceKeyOut:
    issued = await resources.devices.register(body.driver_id, body.label)
    return DeviceKeyOut.issued(issued.row, issued.key)


@router.get("/{device_id}", response_model=DeviceOut, summary="One device")
async def get_device(device_id: uuid.UUID, resources: ResourcesDep) -> DeviceOut:
    return _found(device_id, await resources.devices.get(device_id))


@router.post("/{device_id}/revoke", response_model=DeviceOut, summary="Revoke a device's key (idempotent)")
async def revoke_device(device_id: uuid.UUID, resources: ResourcesDep) -> DeviceOut:
    return _found(device_id, await resources.devices.revoke(device_id))


def _found(device_id: uuid.UUID, row) -> DeviceOut:
    if row is None:
        raise not_found(f"device {device_id}")
    return DeviceOut.of(row)


@router.post("/{device_id}/rotate", response_model=DeviceKeyOut, responses=REVOKED,
             summary="A new key for a device; the old one stops working")
async def rotate_device_key(device_id: uuid.UUID, resources: ResourcesDep) -> DeviceKeyOut:
    issued = await resources.devices.rotate(device_id)
    if issued is None:
        raise not_found(f"device {device_id}")
    return DeviceKeyOut.issued(issued.row, issued.key)
