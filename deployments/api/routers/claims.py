"""`/api/v1/claims`: a driver's own claims (opened by detected crashes) and their one confirmation or rejection.
Another driver's claim is the same 404 as an unknown one; an admin reads any claim here or under
`/api/v1/admin/claims`, but only the claim's driver answers it."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status

from deployments.api.auth import CurrentPrincipal
from deployments.api.routers.common import ERRORS, PageParams, ResourcesDep, own_driver
from deployments.api.schemas import ErrorOut, Page
from deployments.api.schemas_claims import ClaimConfirmation, ClaimDetailOut, ClaimOut, ClaimStatus
from domain.claims import ClaimTransitionError
from usecases.claims import ClaimNotFound, NotClaimant

router = APIRouter(prefix="/api/v1/claims", tags=["claims"], responses=ERRORS)
ANSWER_ERRORS = {
    403: {"model": ErrorOut, "description": "not the claim's driver (an admin cannot answer for them)"},
    409: {"model": ErrorOut, "description": "the claim is confirmed or rejected already"},
}


def claim_page(rows, total: int, paging) -> Page[ClaimOut]:
    return Page[ClaimOut](items=[ClaimOut.model_validate(dict(r)) for r in rows], page=paging.page,
                          page_size=paging.page_size, total=total)


async def read_claim(resources, claim_id: uuid.UUID, may_read) -> ClaimDetailOut:
    try:
        return ClaimDetailOut.model_validate(dict(await resources.claims.claim(claim_id, may_read)))
    except ClaimNotFound as error:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=str(error)) from None


@router.get("/me", response_model=Page[ClaimOut], summary="The caller's claims, newest first")
async def my_claims(principal: CurrentPrincipal, resources: ResourcesDep, paging: PageParams,
                    status_: Annotated[ClaimStatus | None, Query(alias="status")] = None) -> Page[ClaimOut]:
    found = await resources.claims.page(status=status_, driver_id=own_driver(principal), page=paging.page,
                                        page_size=paging.page_size)
    return claim_page(found.rows, found.total, paging)


@router.get("/{claim_id}", response_model=ClaimDetailOut,
            summary="One claim with its readings (own, or any for admins)")
async def get_claim(claim_id: uuid.UUID, principal: CurrentPrincipal, resources: ResourcesDep) -> ClaimDetailOut:
    return await read_claim(resources, claim_id, principal.may_read)


@router.post("/{claim_id}/confirmation", response_model=ClaimDetailOut, responses=ANSWER_ERRORS,
             summary="Confirm or reject an open claim (the claim's driver, once)",
             openapi_extra={"x-access": "only the claim's own driver answers"})
async def confirm_claim(claim_id: uuid.UUID, body: ClaimConfirmation, principal: CurrentPrincipal,
                        resources: ResourcesDep) -> ClaimDetailOut:
    try:
        row = await resources.claims.answer(
            claim_id, driver_id=principal.driver_id, user_id=_user_id(principal.user_id), confirmed=body.confirmed,
            note=body.note, may_read=principal.may_read)
    except ClaimNotFound as error:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=str(error)) from None
    except NotClaimant as error:
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail=str(error)) from None
    except ClaimTransitionError as error:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=str(error)) from None
    return ClaimDetailOut.model_validate(dict(row))


def _user_id(raw: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(raw)
    except ValueError:
        return None
