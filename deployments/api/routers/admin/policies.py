"""`/api/v1/admin/policies`: list, create, read, patch, delete policies; writes invalidate the driver's
cached policies and quote on every replica."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from deployments.api.routers.common import PageParams, ResourcesDep, not_found
from deployments.api.schemas import DRIVER_ID_PATTERN, ErrorOut, Page, PolicyOut, page_offset
from deployments.api.schemas_admin import PolicyCreate, PolicyPatch, PolicyStatus

router = APIRouter(prefix="/policies", tags=["admin: policies"])
CONFLICT = {409: {"model": ErrorOut, "description": "policy number taken"}}


@router.get("", response_model=Page[PolicyOut], summary="Policies by number")
async def list_policies(
    resources: ResourcesDep,
    paging: PageParams,
    status_: Annotated[PolicyStatus | None, Query(alias="status")] = None,
    driver_id: Annotated[str | None, Query(pattern=DRIVER_ID_PATTERN)] = None,
) -> Page[PolicyOut]:
    total, rows = await resources.admin.list_policies(
        paging.page_size, page_offset(paging.page, paging.page_size), status_, driver_id
    )
    items = [PolicyOut.model_validate(dict(r)) for r in rows]
    return Page[PolicyOut](items=items, page=paging.page, page_size=paging.page_size, total=total)


@router.post("", response_model=PolicyOut, status_code=status.HTTP_201_CREATED, responses=CONFLICT,
             summary="Create a policy")
async def create_policy(body: PolicyCreate, resources: ResourcesDep) -> PolicyOut:
    fields = body.model_dump(exclude_none=True)
    row = await resources.admin.create_policy(fields)
    return PolicyOut.model_validate(dict(row))


@router.get("/{policy_id}", response_model=PolicyOut, summary="One policy")
async def get_policy(policy_id: uuid.UUID, resources: ResourcesDep) -> PolicyOut:
    row = await resources.admin.get_policy(policy_id)
    if row is None:
        raise not_found(f"policy {policy_id}")
    return PolicyOut.model_validate(dict(row))


@router.patch("/{policy_id}", response_model=PolicyOut, summary="Change some fields")
async def patch_policy(policy_id: uuid.UUID, body: PolicyPatch, resources: ResourcesDep) -> PolicyOut:
    row = await resources.admin.update_policy(policy_id, body.model_dump(exclude_unset=True))
    if row is None:
        raise not_found(f"policy {policy_id}")
    return PolicyOut.model_validate(dict(row))


@router.delete("/{policy_id}", status_code=status.HTTP_204_NO_CONTENT, summary="Delete a policy")
async def delete_policy(policy_id: uuid.UUID, resources: ResourcesDep) -> Response:
    if not await resources.admin.delete_policy(policy_id):
        raise not_found(f"policy {policy_id}")
    return Response(status_code=status.HTTP_204_NO_CONTENT)
