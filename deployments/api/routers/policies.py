"""`/api/v1/policies`: a driver's policies and the premium quote of their current score (the stored
`PremiumQuoted` of the latest scoring, or priced exactly as the scorer prices: usecases.driver_queries)."""

from __future__ import annotations

from fastapi import APIRouter

from deployments.api.routers.common import ERRORS, add_driver_routes
from deployments.api.schemas import ErrorOut, PoliciesOut, QuoteOut
from usecases.driver_queries import DriverQueries

router = APIRouter(prefix="/api/v1/policies", tags=["policies"], responses=ERRORS)
add_driver_routes(router, "", name="policies", response_model=PoliciesOut, summary="policies, active first",
                  read=DriverQueries.policies)
add_driver_routes(router, "/quote", name="quote", response_model=QuoteOut, summary="premium quote",
                  read=DriverQueries.quote,
                  responses={503: {"model": ErrorOut, "description": "the risk model is unavailable (prior needed)"}})
