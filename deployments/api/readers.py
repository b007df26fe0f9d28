"""The driver-scoped reads behind the routers and the cache warmer: load → shape → JSON bytes, cached.

Each function answers the response body (bytes, ready to send) or None when the driver is unknown, and
goes through `services.cache` (L1 → L2 → PostgreSQL) under the driver's id, so one invalidation of that
driver drops all of them. Misses cost a constant number of statements (storage.postgres.read_models).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from deployments.api.risk_client import prior_request
from deployments.api.schemas import (
    DriverOut,
    FactorOut,
    Page,
    PoliciesOut,
    PolicyOut,
    QuoteOut,
    RiskHistoryItem,
    RiskScoreOut,
    TripOut,
    page_offset,
)
from deployments.api.services import Services
from domain import pricing
from domain.features import annualized_km
from domain.scoring import PolicyTerms, quote_policy
from storage.postgres import read_models
from storage.postgres.policies import active_policies
from storage.postgres.pool import acquire


async def _query(services: Services, fn: Callable[..., Awaitable[Any]], *args: Any) -> Any:
    async with acquire(services.pool, services.settings) as conn:
        return await fn(conn, *args)


def _dump(model: Any) -> bytes:
    return model.model_dump_json().encode()


async def profile(services: Services, driver_id: str) -> bytes | None:
    async def load() -> bytes | None:
        row = await _query(services, read_models.get_driver, driver_id)
        return None if row is None else _dump(DriverOut.model_validate(dict(row)))

    return await services.cache.get(driver_id, "profile", load, services.settings.cache_ttl_default)


async def trips(services: Services, driver_id: str, page: int, page_size: int) -> bytes | None:
    async def load() -> bytes | None:
        known, total, rows = await _query(
            services, read_models.trips_page, driver_id, page_size, page_offset(page, page_size)
        )
        if not known and not total:
            return None
        items = [TripOut.model_validate(dict(r)) for r in rows]
        return _dump(Page[TripOut](items=items, page=page, page_size=page_size, total=total))

    return await services.cache.get(driver_id, f"trips:{page}:{page_size}", load, services.settings.cache_ttl_default)


async def score_history(services: Services, driver_id: str, page: int, page_size: int) -> bytes | None:
    async def load() -> bytes | None:
        known, total, rows = await _query(
            services, read_models.score_history, driver_id, page_size, page_offset(page, page_size)
        )
        if not known and not total:
            return None
        items = [RiskHistoryItem.model_validate(_score_fields(r)) for r in rows]
        return _dump(Page[RiskHistoryItem](items=items, page=page, page_size=page_size, total=total))

    ttl = services.settings.cache_ttl_risk_score
    return await services.cache.get(driver_id, f"history:{page}:{page_size}", load, ttl)


async def score(services: Services, driver_id: str) -> bytes | None:
    """The latest scoring, or the model's prior (credibility 0) for a driver not scored yet. Raises
    RiskModelUnavailable when the prior is needed and the model cannot answer."""

    async def load() -> bytes | None:
        known, row = await _query(services, read_models.latest_score, driver_id)
        if row is not None:
            return _dump(_scored(driver_id, row))
        if not known:
            return None
        assessment = await services.extras["risk"].assess(prior_request(driver_id))
        return _dump(
            RiskScoreOut(
                driver_id=driver_id,
                source="prior",
                score=assessment.score,
                band=assessment.band,
                model_version=assessment.model_version,
                feature_hash=assessment.feature_hash,
                credibility=assessment.credibility,
                scored_at=None,
                trip_id=None,
                top_factors=[FactorOut(name=f.name, contribution=f.contribution) for f in assessment.top_factors],
                explanation={"rate": assessment.rate, "model_rate": assessment.model_rate,
                             "prior_rate": assessment.prior_rate},
            )
        )

    return await services.cache.get(driver_id, "score", load, services.settings.cache_ttl_risk_score)


def _score_fields(row: asyncpg.Record) -> dict[str, Any]:
    fields = dict(row)
    fields["score"] = float(fields["score"])
    return fields


def _scored(driver_id: str, row: asyncpg.Record) -> RiskScoreOut:
    explanation = row["explanation"] if isinstance(row["explanation"], dict) else None
    return RiskScoreOut(
        driver_id=driver_id,
        source="scored",
        score=float(row["score"]),
        band=row["band"],
        model_version=row["model_version"],
        feature_hash=row["feature_hash"],
        credibility=float(row["credibility"]),
        scored_at=row["scored_at"],
        trip_id=row["trip_id"],
        top_factors=_factors(explanation),
        explanation=explanation,
    )


def _factors(explanation: dict[str, Any] | None) -> list[FactorOut]:
    """Top factors as the scorer stored them: [{"name", "contribution"}] or [[name, contribution]]."""
    factors: list[FactorOut] = []
    for item in (explanation or {}).get("top_factors") or ():
        if isinstance(item, dict) and "name" in item and "contribution" in item:
            factors.append(FactorOut(name=str(item["name"]), contribution=float(item["contribution"])))
        elif isinstance(item, list | tuple) and len(item) == 2:
            factors.append(FactorOut(name=str(item[0]), contribution=float(item[1])))
    return factors


async def policies(services: Services, driver_id: str) -> bytes | None:
    async def load() -> bytes | None:
        known, rows = await _query(services, read_models.driver_policies, driver_id)
        if not known:
            return None
        items = [PolicyOut.model_validate({k: r[k] for k in PolicyOut.model_fields}) for r in rows]
        return _dump(PoliciesOut(driver_id=driver_id, items=items))

    return await services.cache.get(driver_id, "policies", load, services.settings.cache_ttl_default)


async def quote(services: Services, driver_id: str) -> bytes | None:
    """The premium for the current score (domain.pricing) on the driver's active policy (tariff defaults
    when there is none), annual km from the scoring window's trips, capped against the current premium."""

    async def load() -> bytes | None:
        score_body = await score(services, driver_id)
        if score_body is None:
            return None
        current = RiskScoreOut.model_validate_json(score_body)
        window_days = services.settings.scoring_window_days
        since = datetime.now(UTC) - timedelta(days=window_days)
        async with acquire(services.pool, services.settings) as conn:
            policy = (await active_policies(conn, [driver_id])).get(driver_id)
            km, _trips = await read_models.exposure_km(conn, driver_id, since)
        annual_km = round(annualized_km(km, window_days), 3)
        priced = quote_policy(current.score, annual_km, _terms(policy), pricing.DEFAULT_RULES)
        fields = {name: getattr(priced, name) for name in QuoteOut.model_fields if hasattr(priced, name)}
        return _dump(
            QuoteOut(
                **{**fields, "driver_id": driver_id, "policy_id": policy["policy_id"] if policy else None,
                   "score_source": current.source, "annual_km": annual_km}
            )
        )

    return await services.cache.get(driver_id, "quote", load, services.settings.cache_ttl_default)


def _terms(policy: asyncpg.Record | None) -> PolicyTerms | None:
    if policy is None:
        return None
    return PolicyTerms(policy_id=policy["policy_id"], base_premium=policy["base_premium"],
                       current_premium=policy["current_premium"], per_km_rate=policy["per_km_rate"],
                       currency=policy["currency"])
