"""`/api/v1/drivers`: a driver's profile and trips (`me`, or an id the caller may read)."""

from __future__ import annotations

from fastapi import APIRouter

from deployments.api.routers.common import ERRORS, add_driver_routes
from deployments.api.schemas import DriverOut, Page, TripOut
from usecases.driver_queries import DriverQueries

router = APIRouter(prefix="/api/v1/drivers", tags=["drivers"], responses=ERRORS)
add_driver_routes(router, "", name="profile", response_model=DriverOut, summary="profile",
                  read=DriverQueries.profile)
add_driver_routes(router, "/trips", name="trips", response_model=Page[TripOut], summary="trips, newest first",
                  read_page=DriverQueries.trips)
