"""`/api/v1/risk`: a driver's current risk score (the prior before any trip) and score history."""

from __future__ import annotations

from fastapi import APIRouter

from deployments.api.routers.common import ERRORS, add_driver_routes
from deployments.api.schemas import ErrorOut, Page, RiskHistoryItem, RiskScoreOut
from usecases.driver_queries import DriverQueries

router = APIRouter(
    prefix="/api/v1/risk",
    tags=["risk"],
    responses={**ERRORS, 503: {"model": ErrorOut, "description": "the risk model is unavailable (prior needed)"}},
)
add_driver_routes(router, "/score", name="score", response_model=RiskScoreOut, summary="current risk score",
                  read=DriverQueries.score)
add_driver_routes(router, "/history", name="score_history", response_model=Page[RiskHistoryItem],
                  summary="scores, newest first", read_page=DriverQueries.score_history)
