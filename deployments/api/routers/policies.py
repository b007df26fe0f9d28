"""`/api/v1/policies`: a driver's policies and a premium quote from their current score."""

from __future__ import annotations

from fastapi import APIRouter

from deployments.api import readers
from deployments.api.routers.common import ERRORS, add_driver_routes
from deployments.api.schemas import ErrorOut, PoliciesOut, QuoteOut

router = APIRouter(prefix="/api/v1/policies", tags=["policies"], responses=ERRORS)
add_driver_routes(router, "", name="policies", response_model=PoliciesOut, summary="policies, active first",
                  read=readers.policies)
add_driver_routes(router, "/quote", name="quote", response_model=QuoteOut, summary="premium quote",
                  read=readers.quote,
                  responses={503: {"model": ErrorOut, "description": "the risk model is unavailable (prior needed)"}})
