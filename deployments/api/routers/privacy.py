"""Privacy consent (docs/PRIVACY.md): `GET|PUT /api/v1/drivers/{me|id}/privacy`, `POST /api/v1/trips/{id}/private`.

Reading a mode: the driver (own) or an admin. Changing it and marking a trip private: the driver only — a consent is
the driver's own act, so an admin gets 403; another driver's id or trip is the same 404 as an unknown one.
"""

from __future__ import annotations

import uuid

from fastapi import APIRouter, HTTPException, status

from deployments.api.auth import CurrentPrincipal, Principal
from deployments.api.routers.common import ERRORS, DriverIdPath, ResourcesDep, not_found, own_driver, readable_driver
from deployments.api.schemas import ErrorOut
from deployments.api.schemas_privacy import PrivacyIn, PrivacyOut, privacy_out
from domain.privacy import PrivacyRefused
from usecases.privacy import Actor

router = APIRouter(tags=["privacy"], responses=ERRORS)
DRIVER_ONLY = {403: {"model": ErrorOut, "description": "a consent is the driver's own: admins may read it only"},
               409: {"model": ErrorOut, "description": "not allowed in the current mode (or after erasure)"}}
OWN_CONSENT = {"x-access": "the driver only: admins 403 (a consent is the driver's own act)"}


def _consenting(principal: Principal) -> Actor:
    if principal.driver_id is None or principal.is_admin:
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="only the driver may change their privacy consent")
    return Actor(principal.user_id, principal.role)


async def _read(resources, driver_id: str) -> PrivacyOut:
    state = await resources.privacy.state(driver_id)
    if state is None:
        raise not_found(f"driver {driver_id!r}")
    return privacy_out(state)


async def _write(resources, driver_id: str, body: PrivacyIn, principal: Principal) -> PrivacyOut:
    actor = _consenting(principal)
    try:
        state = await resources.privacy.set_mode(driver_id, body.mode, actor)
    except PrivacyRefused as refused:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=str(refused)) from None
    if state is None:
        raise not_found(f"driver {driver_id!r}")
    return privacy_out(state)


@router.get("/api/v1/drivers/me/privacy", response_model=PrivacyOut, summary="The caller's privacy mode")
async def my_privacy(principal: CurrentPrincipal, resources: ResourcesDep) -> PrivacyOut:
    return await _read(resources, own_driver(principal))


@router.get("/api/v1/drivers/{driver_id}/privacy", response_model=PrivacyOut,
            summary="A driver's privacy mode (own, or any for admins)")
async def driver_privacy(driver_id: DriverIdPath, principal: CurrentPrincipal, resources: ResourcesDep) -> PrivacyOut:
    return await _read(resources, readable_driver(principal, driver_id))


@router.put("/api/v1/drivers/me/privacy", response_model=PrivacyOut, responses=DRIVER_ONLY,
            openapi_extra=OWN_CONSENT,
            summary="Set the caller's privacy mode (an event: who and when)")
async def set_my_privacy(body: PrivacyIn, principal: CurrentPrincipal, resources: ResourcesDep) -> PrivacyOut:
    return await _write(resources, own_driver(principal), body, principal)


@router.put("/api/v1/drivers/{driver_id}/privacy", response_model=PrivacyOut, responses=DRIVER_ONLY,
            openapi_extra=OWN_CONSENT,
            summary="Set one's own privacy mode by id (the driver only)")
async def set_driver_privacy(driver_id: DriverIdPath, body: PrivacyIn, principal: CurrentPrincipal,
                             resources: ResourcesDep) -> PrivacyOut:
    return await _write(resources, readable_driver(principal, driver_id), body, principal)


@router.post("/api/v1/trips/{trip_id}/private", response_model=PrivacyOut, responses=DRIVER_ONLY,
            openapi_extra=OWN_CONSENT,
             summary="Mark one of the caller's trips private (private_trips mode)")
async def mark_trip_private(trip_id: uuid.UUID, principal: CurrentPrincipal, resources: ResourcesDep) -> PrivacyOut:
    actor = _consenting(principal)
    try:
        state = await resources.privacy.mark_private(trip_id, principal.driver_id or "", actor)
    except PrivacyRefused as refused:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=str(refused)) from None
    if state is None:
        raise not_found(f"trip {trip_id}")
    return privacy_out(state)
