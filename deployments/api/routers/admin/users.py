"""`/api/v1/admin/users`: list, create, read, patch, delete logins. Passwords are hashed (argon2id, off the
event loop); responses never carry the hash."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Response, status

from deployments.api.auth import AdminPrincipal, hash_password
from deployments.api.routers.common import PageParams, ServicesDep, not_found
from deployments.api.schemas import ErrorOut, Page, page_offset
from deployments.api.schemas_admin import Role, UserCreate, UserOut, UserPatch
from storage.postgres import users
from storage.postgres.pool import acquire

router = APIRouter(prefix="/users", tags=["admin: users"])
CONFLICT = {409: {"model": ErrorOut, "description": "username taken, driver already has a login, or own login"}}


@router.get("", response_model=Page[UserOut], summary="Logins by username")
async def list_users(
    services: ServicesDep, paging: PageParams, role: Annotated[Role | None, Query()] = None
) -> Page[UserOut]:
    async with acquire(services.pool, services.settings) as conn:
        total, rows = await users.list_users(conn, paging.page_size, page_offset(paging.page, paging.page_size), role)
    items = [UserOut.model_validate(dict(r)) for r in rows]
    return Page[UserOut](items=items, page=paging.page, page_size=paging.page_size, total=total)


@router.post("", response_model=UserOut, status_code=status.HTTP_201_CREATED, responses=CONFLICT,
             summary="Create a login")
async def create_user(body: UserCreate, services: ServicesDep) -> UserOut:
    password_hash = await hash_password(body.password)
    async with acquire(services.pool, services.settings) as conn:
        row = await users.create_user(
            conn, username=body.username, password_hash=password_hash, role=body.role, driver_id=body.driver_id
        )
    return UserOut.model_validate(dict(row))


@router.get("/{user_id}", response_model=UserOut, summary="One login")
async def get_user(user_id: uuid.UUID, services: ServicesDep) -> UserOut:
    async with acquire(services.pool, services.settings) as conn:
        row = await users.get_user(conn, user_id)
    if row is None:
        raise not_found(f"user {user_id}")
    return UserOut.model_validate(dict(row))


@router.patch("/{user_id}", response_model=UserOut, responses=CONFLICT, summary="Change role, password, status")
async def patch_user(user_id: uuid.UUID, body: UserPatch, services: ServicesDep) -> UserOut:
    changes = body.model_dump(exclude_unset=True)
    if "password" in changes:
        changes["password_hash"] = await hash_password(changes.pop("password"))
    async with acquire(services.pool, services.settings) as conn:
        row = await users.update_user(conn, user_id, changes)
    if row is None:
        raise not_found(f"user {user_id}")
    return UserOut.model_validate(dict(row))


@router.delete("/{user_id}", status_code=status.HTTP_204_NO_CONTENT, responses=CONFLICT, summary="Delete a login")
async def delete_user(user_id: uuid.UUID, principal: AdminPrincipal, services: ServicesDep) -> Response:
    if principal.user_id == str(user_id):
        raise HTTPException(status.HTTP_409_CONFLICT, detail="you cannot delete your own login")
    async with acquire(services.pool, services.settings) as conn:
        deleted = await users.delete_user(conn, user_id)
    if not deleted:
        raise not_found(f"user {user_id}")
    return Response(status_code=status.HTTP_204_NO_CONTENT)
