"""`/api/v1/admin/users`: list, create, read, patch, delete logins. Passwords are hashed (argon2id, off the
event loop); responses never carry the hash."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from deployments.api.auth import AdminPrincipal
from deployments.api.routers.common import PageParams, ResourcesDep, not_found
from deployments.api.schemas import ErrorOut, Page, page_offset
from deployments.api.schemas_admin import Role, UserCreate, UserOut, UserPatch

router = APIRouter(prefix="/users", tags=["admin: users"])
CONFLICT = {409: {"model": ErrorOut, "description": "username taken, driver already has a login, or own login"}}


@router.get("", response_model=Page[UserOut], summary="Logins by username")
async def list_users(
    resources: ResourcesDep, paging: PageParams, role: Annotated[Role | None, Query()] = None
) -> Page[UserOut]:
    total, rows = await resources.admin.list_users(paging.page_size, page_offset(paging.page, paging.page_size), role)
    items = [UserOut.model_validate(dict(r)) for r in rows]
    return Page[UserOut](items=items, page=paging.page, page_size=paging.page_size, total=total)


@router.post("", response_model=UserOut, status_code=status.HTTP_201_CREATED, responses=CONFLICT,
             summary="Create a login")
async def create_user(body: UserCreate, resources: ResourcesDep) -> UserOut:
    row = await resources.admin.create_user(username=body.username, password=body.password, role=body.role,
                                            driver_id=body.driver_id)
    return UserOut.model_validate(dict(row))


@router.get("/{user_id}", response_model=UserOut, summary="One login")
async def get_user(user_id: uuid.UUID, resources: ResourcesDep) -> UserOut:
    row = await resources.admin.get_user(user_id)
    if row is None:
        raise not_found(f"user {user_id}")
    return UserOut.model_validate(dict(row))


@router.patch("/{user_id}", response_model=UserOut, responses=CONFLICT, summary="Change role, password, status")
async def patch_user(user_id: uuid.UUID, body: UserPatch, resources: ResourcesDep) -> UserOut:
    row = await resources.admin.update_user(user_id, body.model_dump(exclude_unset=True))
    if row is None:
        raise not_found(f"user {user_id}")
    return UserOut.model_validate(dict(row))


@router.delete("/{user_id}", status_code=status.HTTP_204_NO_CONTENT, responses=CONFLICT, summary="Delete a login")
async def delete_user(user_id: uuid.UUID, principal: AdminPrincipal, resources: ResourcesDep) -> Response:
    if not await resources.admin.delete_user(user_id, by_user_id=principal.user_id):
        raise not_found(f"user {user_id}")
    return Response(status_code=status.HTTP_204_NO_CONTENT)
