"""What the routers share: pagination parameters, "may this caller see that driver", JSON bodies, 404s.

No `from __future__ import annotations` here: the endpoints `add_driver_routes` defines are closures, which
Serve's ingress pickles by value with only the globals their code uses; string annotations would then no
longer resolve and FastAPI would read `principal`/`resources` as query parameters.
"""

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Response, status

from deployments.api.auth import CurrentPrincipal, Principal
from deployments.api.resources import ApiResources, get_resources
from deployments.api.schemas import DRIVER_ID_PATTERN, PAGE_MAX, PAGE_SIZE_MAX, ErrorOut
from usecases.driver_queries import DriverQueries

JSON = "application/json"

# Documented on every guarded route so the OpenAPI lists the 4xx answers (schemathesis checks them).
ERRORS: dict[int | str, dict] = {
    400: {"model": ErrorOut, "description": "a request body that is not readable JSON"},
    401: {"model": ErrorOut, "description": "missing, malformed, expired or tampered bearer token"},
    404: {"model": ErrorOut, "description": "unknown resource, or one this login may not read"},
    413: {"model": ErrorOut, "description": "request body larger than this route class allows"},
    415: {"model": ErrorOut, "description": "a request body that is not application/json"},
}
ADMIN_ERRORS: dict[int | str, dict] = {**ERRORS, 403: {"model": ErrorOut, "description": "admin role required"}}


class Pagination:
    """`page` ≥ 1 (1-based), `page_size` 1..100, default 20."""

    def __init__(self, page: int, page_size: int) -> None:
        self.page = page
        self.page_size = page_size


async def pagination(
    page: Annotated[int, Query(ge=1, le=PAGE_MAX, description="1-based page number")] = 1,
    page_size: Annotated[int, Query(ge=1, le=PAGE_SIZE_MAX, description="items per page, 1..100")] = 20,
) -> Pagination:
    """An `async def` dependency: FastAPI would build a class dependency in a worker thread per request."""
    return Pagination(page, page_size)


PageParams = Annotated[Pagination, Depends(pagination)]
DriverIdPath = Annotated[str, Path(pattern=DRIVER_ID_PATTERN, description="driver id, e.g. driver0001")]


def not_found(what: str) -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, detail=f"{what} not found")


def own_driver(principal: Principal) -> str:
    """The caller's own driver id for `/me` routes; an admin without a driver profile gets 404."""
    if principal.driver_id is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="this login has no driver profile; use /{driver_id}")
    return principal.driver_id


def readable_driver(principal: Principal, driver_id: str) -> str:
    """`driver_id` if the caller may read it. Another driver's id is 404, exactly like an unknown one,
    so a driver cannot probe which ids exist."""
    if not principal.may_read(driver_id):
        raise not_found(f"driver {driver_id!r}")
    return driver_id


def json_body(body: bytes | None, what: str) -> Response:
    if body is None:
        raise not_found(what)
    return Response(content=body, media_type=JSON)


ResourcesDep = Annotated[ApiResources, Depends(get_resources)]


# Handlers of usecases.driver_queries.DriverQueries, unbound (e.g. `DriverQueries.profile`).
Query = Callable[[DriverQueries, str], Awaitable[bytes | None]]
PagedQuery = Callable[[DriverQueries, str, int, int], Awaitable[bytes | None]]


def add_driver_routes(
    router: APIRouter,
    suffix: str,
    *,
    name: str,
    response_model: Any,
    summary: str,
    read: Query | None = None,
    read_page: PagedQuery | None = None,
    responses: dict[int | str, dict] | None = None,
) -> None:
    """GET `/me{suffix}` (the caller's own) and `/{driver_id}{suffix}` (own or, for admins, any) answering the
    same cached body from the use case `read` (or, paginated, `read_page`): decode → handler → bytes.
    `/me` is added first so it wins the match."""
    if read_page is not None:

        async def mine_page(principal: CurrentPrincipal, resources: ResourcesDep, paging: PageParams) -> Response:
            driver_id = own_driver(principal)
            body = await read_page(resources.queries, driver_id, paging.page, paging.page_size)
            return json_body(body, f"driver {driver_id!r}")

        async def theirs_page(
            driver_id: DriverIdPath, principal: CurrentPrincipal, resources: ResourcesDep, paging: PageParams
        ) -> Response:
            readable_driver(principal, driver_id)
            body = await read_page(resources.queries, driver_id, paging.page, paging.page_size)
            return json_body(body, f"driver {driver_id!r}")

        mine, theirs = mine_page, theirs_page
    else:
        assert read is not None

        async def mine_one(principal: CurrentPrincipal, resources: ResourcesDep) -> Response:
            driver_id = own_driver(principal)
            return json_body(await read(resources.queries, driver_id), f"driver {driver_id!r}")

        async def theirs_one(driver_id: DriverIdPath, principal: CurrentPrincipal, resources: ResourcesDep) -> Response:
            readable_driver(principal, driver_id)
            return json_body(await read(resources.queries, driver_id), f"driver {driver_id!r}")

        mine, theirs = mine_one, theirs_one
    common = {"methods": ["GET"], "response_model": response_model, "responses": responses}
    router.add_api_route(f"/me{suffix}", mine, name=f"my_{name}", summary=f"The caller's {summary}", **common)
    router.add_api_route(f"/{{driver_id}}{suffix}", theirs, name=f"driver_{name}",
                         summary=f"A driver's {summary} (own, or any for admins)", **common)
