"""`/api/v1/admin/claims`: every claim the crashes opened, newest first, by status or driver; one with its
readings."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from deployments.api.routers.claims import claim_page, read_claim
from deployments.api.routers.common import PageParams, ResourcesDep
from deployments.api.schemas import DRIVER_ID_PATTERN, Page
from deployments.api.schemas_claims import ClaimDetailOut, ClaimOut, ClaimStatus

router = APIRouter(prefix="/claims", tags=["admin: claims"])


@router.get("", response_model=Page[ClaimOut], summary="Claims (first notice of loss), newest first")
async def list_claims(
    resources: ResourcesDep,
    paging: PageParams,
    status_: Annotated[ClaimStatus | None, Query(alias="status")] = None,
    driver_id: Annotated[str | None, Query(pattern=DRIVER_ID_PATTERN)] = None,
) -> Page[ClaimOut]:
    found = await resources.claims.page(status=status_, driver_id=driver_id, page=paging.page,
                                        page_size=paging.page_size)
    return claim_page(found.rows, found.total, paging)


@router.get("/{claim_id}", response_model=ClaimDetailOut, summary="One claim with the readings around the crash")
async def get_claim(claim_id: uuid.UUID, resources: ResourcesDep) -> ClaimDetailOut:
    return await read_claim(resources, claim_id, lambda _driver: True)
