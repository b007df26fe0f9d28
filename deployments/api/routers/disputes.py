"""Disputes and the premium ledger (issue 16 item 2): a driver disputes an episode of their own trip and reads
their disputes and ledger; admins read any and decide (`/api/v1/admin/disputes`). The rules are
usecases/disputes.py and domain/disputes.py; another driver's trip or dispute is the same 404 as an unknown one.

No `from __future__ import annotations`: routers/common.py says why (Serve pickles closures by value)."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, status

from deployments.api.auth import CurrentPrincipal, Principal, require_admin
from deployments.api.routers.common import (
    ADMIN_ERRORS,
    ERRORS,
    DriverIdPath,
    PageParams,
    ResourcesDep,
    own_driver,
    readable_driver,
)
from deployments.api.schemas import DRIVER_ID_PATTERN, ErrorOut, Page
from deployments.api.schemas_disputes import DecisionIn, DisputeIn, DisputeOut, LedgerEntryOut

DISPUTE_ERRORS = {**ERRORS, 409: {"model": ErrorOut, "description": "the episode is disputed already"},
                  422: {"model": ErrorOut, "description": "not a disputable episode, or a blank reason"}}
Status = Annotated[str | None, Query(alias="status", pattern="^(open|accepted|rejected)$",
                                     description="open | accepted | rejected")]

trips = APIRouter(prefix="/api/v1/trips", tags=["disputes"], responses=DISPUTE_ERRORS)
drivers = APIRouter(prefix="/api/v1/drivers", tags=["disputes"], responses=ERRORS)
admin = APIRouter(prefix="/api/v1/admin/disputes", tags=["admin: disputes"], dependencies=[Depends(require_admin)],
                  responses={**ADMIN_ERRORS, 409: {"model": ErrorOut, "description": "decided already"}})


@trips.post("/{trip_id}/disputes", response_model=DisputeOut, status_code=status.HTTP_201_CREATED,
            summary="Dispute one harsh or speeding episode of the caller's own trip",
            openapi_extra={"x-access": "only the trip's own driver (an admin gets 404)"})
async def open_dispute(trip_id: uuid.UUID, body: DisputeIn, principal: CurrentPrincipal,
                       resources: ResourcesDep) -> DisputeOut:
    record = await resources.disputes.open(trip_id=trip_id, episode_id=body.episode_id, reason=body.reason,
                                           user_id=principal.user_id, may_read=_own_only(principal))
    return DisputeOut.of(record)


def _own_only(principal: Principal):
    """Only the trip's driver disputes it: an admin's login is not the driver's word."""
    return lambda driver_id: principal.driver_id == driver_id


async def _disputes_page(resources, driver_id: str, status_: str | None, paging) -> Page[DisputeOut]:
    total, records = await resources.disputes.page(driver_id, status_, paging.page, paging.page_size)
    return Page[DisputeOut](items=[DisputeOut.of(r) for r in records], page=paging.page, page_size=paging.page_size,
                            total=total)


async def _ledger_page(resources, driver_id: str, paging) -> Page[LedgerEntryOut]:
    total, entries = await resources.disputes.ledger(driver_id, paging.page, paging.page_size)
    return Page[LedgerEntryOut](items=[LedgerEntryOut.of(e) for e in entries], page=paging.page,
                                page_size=paging.page_size, total=total)


@drivers.get("/me/disputes", response_model=Page[DisputeOut], summary="The caller's disputes, newest first")
async def my_disputes(principal: CurrentPrincipal, resources: ResourcesDep, paging: PageParams,
                      status_: Status = None) -> Page[DisputeOut]:
    return await _disputes_page(resources, own_driver(principal), status_, paging)


@drivers.get("/{driver_id}/disputes", response_model=Page[DisputeOut],
             summary="A driver's disputes, newest first (own, or any for admins)")
async def driver_disputes(driver_id: DriverIdPath, principal: CurrentPrincipal, resources: ResourcesDep,
                          paging: PageParams, status_: Status = None) -> Page[DisputeOut]:
    return await _disputes_page(resources, readable_driver(principal, driver_id), status_, paging)


@drivers.get("/me/premium-ledger", response_model=Page[LedgerEntryOut],
             summary="The caller's premium ledger: every premium decision and its cause, newest first")
async def my_ledger(principal: CurrentPrincipal, resources: ResourcesDep, paging: PageParams) -> Page[LedgerEntryOut]:
    return await _ledger_page(resources, own_driver(principal), paging)


@drivers.get("/{driver_id}/premium-ledger", response_model=Page[LedgerEntryOut],
             summary="A driver's premium ledger, newest first (own, or any for admins)")
async def driver_ledger(driver_id: DriverIdPath, principal: CurrentPrincipal, resources: ResourcesDep,
                        paging: PageParams) -> Page[LedgerEntryOut]:
    return await _ledger_page(resources, readable_driver(principal, driver_id), paging)


@admin.get("", response_model=Page[DisputeOut], summary="Disputes of every driver, newest first")
async def list_disputes(resources: ResourcesDep, paging: PageParams, status_: Status = None,
                        driver_id: Annotated[str | None, Query(pattern=DRIVER_ID_PATTERN)] = None
                        ) -> Page[DisputeOut]:
    total, records = await resources.disputes.page(driver_id, status_, paging.page, paging.page_size)
    return Page[DisputeOut](items=[DisputeOut.of(r) for r in records], page=paging.page, page_size=paging.page_size,
                            total=total)


@admin.get("/{dispute_id}", response_model=DisputeOut, summary="One dispute")
async def get_dispute(dispute_id: uuid.UUID, principal: CurrentPrincipal, resources: ResourcesDep) -> DisputeOut:
    return DisputeOut.of(await resources.disputes.get(dispute_id, principal.may_read))


@admin.post("/{dispute_id}/decision", response_model=DisputeOut,
            summary="Accept (the episode leaves the trip, the driver is re-scored and repriced) or reject a dispute")
async def decide_dispute(dispute_id: uuid.UUID, body: DecisionIn, principal: CurrentPrincipal,
                         resources: ResourcesDep) -> DisputeOut:
    record = await resources.disputes.decide(dispute_id, accept=body.decision == "accepted", note=body.note,
                                             user_id=principal.user_id)
    return DisputeOut.of(record)
