"""The driver queries: profile, trips page, score (the prior before any scoring), score history, policies and
the premium quote — each answered as JSON bytes through the response cache under the driver's id, so one
invalidation of that driver drops all of them. `None` means "unknown driver" (→ 404).

A trip's detail (the trip, its episodes, its route) is asked for by trip id: the owner is known only after a
lookup, and the caller's `may_read(owner)` decides; an unknown trip and one the caller may not read are the same
`None`. The route alone is cached (under the owner, after the lookup): simplifying thousands of readings is the
one cost worth keeping; the trip and a page of its episodes are one indexed statement each, as cheap as that
lookup.

The quote follows the scorer (STYLE habit 14, one rule per decision): it serves the stored `PremiumQuoted` of
the latest scoring when that was priced on the driver's current active policy; otherwise it prices the score
with the scorer's own function (domain.scoring.quote_policy) over the scorer's own window
(domain.scoring.window_start_ms … the driver's latest trip end, device time — never now()).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

from domain import pricing
from domain.decisions import rescore_as_quote
from domain.events import DisputeRescored, PremiumQuoted
from domain.features import driver_features
from domain.pricing import PricingRules, Quote
from domain.privacy import PrivacyState
from domain.route_simplify import Route, RouteRules, simplify_route
from domain.scoring import PolicyTerms, policy_rules, quote_policy, window_start_ms
from domain.trip_episodes import Episode, episode_from_stored
from usecases.ports.cache import ResponseCache
from usecases.ports.privacy_store import PrivacyStore
from usecases.ports.read_models import DriverReadModels, QuoteBasis, Row, TripBounds
from usecases.ports.risk_model import RiskModel, prior_request
from usecases.views import (
    DriverView,
    EpisodeView,
    FactorView,
    PageView,
    PoliciesView,
    PolicyView,
    QuoteView,
    RiskHistoryView,
    RiskScoreView,
    RouteGeometryView,
    RoutePropertiesView,
    RouteView,
    decode_score,
    encode,
    trip_view,
)

MayRead = Callable[[str], bool]  # may the caller read this driver's data? (the API's principal.may_read)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_POLICY_FIELDS = PolicyView.__struct_fields__
_QUOTE_FROM_PRICE = tuple(n for n in QuoteView.__struct_fields__ if n in Quote.__struct_fields__)


@dataclass(frozen=True, slots=True)
class QueryTerms:
    """Cache lifetimes (s), the scoring window (days, the scorer's `scoring_window_days`), the tariff and how a
    trip's route is simplified."""

    ttl_default_s: int
    ttl_score_s: int
    window_days: float
    rules: PricingRules = pricing.DEFAULT_RULES
    route: RouteRules = field(default_factory=RouteRules)


def page_offset(page: int, page_size: int) -> int:
    """Rows to skip for a 1-based page."""
    if page < 1 or page_size < 1:
        raise ValueError("page and page_size must be ≥ 1")
    return (page - 1) * page_size


class DriverQueries:
    """Handlers over the ports: read models (PostgreSQL), response cache (L1 → Redis), risk model (the prior)."""

    def __init__(self, read_models: DriverReadModels, cache: ResponseCache, risk_model: RiskModel,
                 terms: QueryTerms, privacy: PrivacyStore | None = None) -> None:
        self.read_models = read_models
        self.cache = cache
        self.risk_model = risk_model
        self.terms = terms
        self.privacy = privacy  # consent (docs/PRIVACY.md); None: every driver in the default mode (unit fakes)

    async def _privacy(self, driver_id: str) -> PrivacyState | None:
        """Read per request, outside the cache: a consent change applies from the next request on every replica."""
        return None if self.privacy is None else await self.privacy.state(driver_id)

    async def profile(self, driver_id: str) -> bytes | None:
        async def load() -> bytes | None:
            row = await self.read_models.profile(driver_id)
            return None if row is None else encode(DriverView(**row))

        return await self.cache.get(driver_id, "profile", load, self.terms.ttl_default_s)

    async def trips(self, driver_id: str, page: int, page_size: int) -> bytes | None:
        async def load() -> bytes | None:
            found = await self.read_models.trips_page(driver_id, page_size, page_offset(page, page_size))
            if not found.known and not found.total:
                return None
            privacy = await self._privacy(driver_id) if found.rows else None
            items = [trip_view(r, privacy) for r in found.rows]
            return encode(PageView(items=items, page=page, page_size=page_size, total=found.total))

        return await self.cache.get(driver_id, f"trips:{page}:{page_size}", load, self.terms.ttl_default_s)

    async def score_history(self, driver_id: str, page: int, page_size: int) -> bytes | None:
        async def load() -> bytes | None:
            found = await self.read_models.score_history(driver_id, page_size, page_offset(page, page_size))
            if not found.known and not found.total:
                return None
            items = [_history_item(r) for r in found.rows]
            return encode(PageView(items=items, page=page, page_size=page_size, total=found.total))

        return await self.cache.get(driver_id, f"history:{page}:{page_size}", load, self.terms.ttl_score_s)

    async def score(self, driver_id: str) -> bytes | None:
        """The latest scoring, or the model's prior (credibility 0) for a known driver not scored yet. Raises
        RiskModelUnavailable when the prior is needed and the model cannot answer."""

        async def load() -> bytes | None:
            known, row = await self.read_models.latest_score(driver_id)
            if row is not None:
                return encode(scored_view(driver_id, row))
            if not known:
                return None
            a = await self.risk_model.assess(prior_request(driver_id))
            return encode(RiskScoreView(
                driver_id=driver_id, source="prior", score=a.score, band=a.band, model_version=a.model_version,
                feature_hash=a.feature_hash, credibility=a.credibility, scored_at=None, trip_id=None,
                top_factors=[FactorView(name=f.name, contribution=f.contribution) for f in a.top_factors],
                explanation={"rate": a.rate, "model_rate": a.model_rate, "prior_rate": a.prior_rate},
            ))

        return await self.cache.get(driver_id, "score", load, self.terms.ttl_score_s)

    async def policies(self, driver_id: str) -> bytes | None:
        async def load() -> bytes | None:
            known, rows = await self.read_models.policies(driver_id)
            if not known:
                return None
            items = [PolicyView(**{k: r[k] for k in _POLICY_FIELDS}) for r in rows]
            return encode(PoliciesView(driver_id=driver_id, items=items))

        return await self.cache.get(driver_id, "policies", load, self.terms.ttl_default_s)

    async def quote(self, driver_id: str) -> bytes | None:
        """The premium of the current score on the active policy (module docstring: stored, or priced alike)."""

        async def load() -> bytes | None:
            body = await self.score(driver_id)
            if body is None:
                return None
            current = decode_score(body)
            basis = await self.read_models.quote_basis(driver_id)
            stored = stored_quote_for(current, basis, self.terms.rules)
            if stored is not None:
                return encode(quote_from_stored(driver_id, stored, basis.policy, self.terms.rules))
            annual_km = await self._window_annual_km(driver_id, basis.latest_trip_end_ms)
            priced = quote_policy(current.score, annual_km, basis.policy, self.terms.rules)
            return encode(_quote_view(driver_id, basis.policy, current.source, priced))

        return await self.cache.get(driver_id, "quote", load, self.terms.ttl_default_s)

    async def trip(self, trip_id: uuid.UUID) -> tuple[str, bytes] | None:
        """(owner's driver id, the trip) — the caller checks the owner; not cached (no driver to scope it by)."""
        row = await self.read_models.trip(trip_id)
        if row is None:
            return None
        return row["driver_id"], encode(trip_view(row, await self._privacy(row["driver_id"])))

    async def trip_episodes(self, trip_id: uuid.UUID, page: int, page_size: int, may_read: MayRead) -> bytes | None:
        """A page of the trip's episodes by start time; None for an unknown trip or one `may_read` refuses."""
        found = await self.read_models.trip_episodes(trip_id, page_size, page_offset(page, page_size))
        if found is None or not may_read(found.driver_id):
            return None
        privacy = await self._privacy(found.driver_id)
        hidden = privacy is not None and privacy.withholds(trip_id)
        items = [episode_view(episode_from_stored(row.payload_json, None if hidden else row.start_position), hidden)
                 for row in found.rows]
        return encode(PageView(items=items, page=page, page_size=page_size, total=found.total))

    async def trip_route(self, trip_id: uuid.UUID, may_read: MayRead) -> bytes | None:
        """The trip's readings as a simplified GeoJSON LineString Feature (domain.route_simplify); None for an
        unknown trip or one `may_read` refuses. Cached under the owner; simplified off the event loop."""
        trip = await self.read_models.trip_bounds(trip_id)
        if trip is None or not may_read(trip.driver_id):
            return None
        rules = self.terms.route
        privacy = await self._privacy(trip.driver_id)
        if privacy is not None and privacy.withholds(trip_id):
            return encode(route_view(trip, Route(coordinates=[], points_in=0, points_skipped=0, tolerance_m=0.0),
                                     rules, False, withheld=True))

        async def load() -> bytes:
            positions = await self.read_models.trip_positions(trip, rules.max_readings + 1)
            truncated = len(positions) > rules.max_readings
            route = await asyncio.to_thread(simplify_route, positions[: rules.max_readings], rules)
            return encode(route_view(trip, route, rules, truncated))

        return await self.cache.get(trip.driver_id, f"route:{trip_id}", load, self.terms.ttl_default_s)

    async def _window_annual_km(self, driver_id: str, end_ms: int | None) -> float:
        """The scorer's exposure: annual km of the trips in (window_start_ms(end), end], end = latest trip end."""
        days = self.terms.window_days
        if end_ms is None:
            return driver_features([], days).annual_km
        trips = await self.read_models.window_trips(driver_id, window_start_ms(end_ms, days), end_ms)
        return driver_features(trips, days).annual_km


def stored_quote_for(current: RiskScoreView, basis: QuoteBasis, rules: PricingRules) -> PremiumQuoted | None:
    """The stored quote when it belongs to the current score (same trip and model) and the active policy; an
    accepted dispute's re-score is the quote it made (domain.decisions.rescore_as_quote)."""
    stored, policy = basis.stored_quote, basis.policy
    if isinstance(stored, DisputeRescored):
        stored = rescore_as_quote(stored, rules)
    if stored is None or policy is None or current.source != "scored" or stored.policy_id != policy.policy_id:
        return None
    if stored.trip_id != current.trip_id or stored.model_version != current.model_version:
        return None
    return stored


def quote_from_stored(driver_id: str, stored: PremiumQuoted, policy: PolicyTerms | None,
                      rules: PricingRules) -> QuoteView:
    """The stored decision as it was made (premium, cap, clamp, forecast to the better band); the breakdown
    (band/per-km parts, the worse band) re-derived with the same inputs and the policy's tariff."""
    tariff = policy_rules(policy, rules) if policy is not None else rules
    breakdown = pricing.quote(stored.score, stored.annual_km, previous_premium=stored.previous_premium, rules=tariff)
    view = _quote_view(driver_id, policy, "scored", breakdown)
    forecast = stored.forecast
    return msgspec.structs.replace(
        view, policy_id=stored.policy_id, score=stored.score, band=stored.band, annual_km=stored.annual_km,
        currency=stored.currency, previous_premium=stored.previous_premium, premium=stored.premium,
        cap_applied=stored.cap_applied, clamp_applied=stored.clamp_applied, better_band=forecast.better_band,
        score_drop_to_better_band=forecast.score_drop_to_better_band,
        premium_at_better_band=forecast.premium_at_better_band, saving_at_better_band=forecast.saving_at_better_band,
    )


def _quote_view(driver_id: str, policy: PolicyTerms | None, source: str, priced: Quote) -> QuoteView:
    fields = {name: getattr(priced, name) for name in _QUOTE_FROM_PRICE}
    return QuoteView(**fields, driver_id=driver_id, policy_id=policy.policy_id if policy else None,
                     score_source=source)


def scored_view(driver_id: str, row: Row) -> RiskScoreView:
    explanation = row["explanation"] if isinstance(row["explanation"], dict) else None
    return RiskScoreView(
        driver_id=driver_id, source="scored", score=float(row["score"]), band=row["band"],
        model_version=row["model_version"], feature_hash=row["feature_hash"], credibility=float(row["credibility"]),
        scored_at=row["scored_at"], trip_id=row["trip_id"], top_factors=top_factors(explanation),
        explanation=explanation,
    )


def top_factors(explanation: Mapping[str, Any] | None) -> list[FactorView]:
    """Top factors as the scorer stored them: [{"name", "contribution"}] or [[name, contribution]]."""
    factors: list[FactorView] = []
    for item in (explanation or {}).get("top_factors") or ():
        if isinstance(item, dict) and "name" in item and "contribution" in item:
            factors.append(FactorView(name=str(item["name"]), contribution=float(item["contribution"])))
        elif isinstance(item, list | tuple) and len(item) == 2:
            factors.append(FactorView(name=str(item[0]), contribution=float(item[1])))
    return factors


def episode_view(e: Episode, withheld: bool = False) -> EpisodeView:
    if withheld:  # the driver's consent: where it happened is not served (docs/PRIVACY.md)
        e = msgspec.structs.replace(e, lat=None, lon=None)
    return EpisodeView(event_id=e.event_id, type=e.type, grade=e.grade, start_time=_utc(e.start_ms),
                       end_time=_utc(e.end_ms), duration_s=e.duration_s, peak_value=e.peak_value,
                       peak_unit=e.peak_unit, lat=e.lat, lon=e.lon, speed_limit_kmh=e.speed_limit_kmh, band=e.band)


def route_view(trip: TripBounds, route: Route, rules: RouteRules, truncated: bool,
               withheld: bool = False) -> RouteView:
    """A GeoJSON Feature; its geometry is null below two points (a LineString needs two, RFC 7946 §3.1.4)."""
    geometry = RouteGeometryView(coordinates=route.coordinates) if len(route.coordinates) >= 2 else None
    return RouteView(geometry=geometry, properties=RoutePropertiesView(
        trip_id=trip.trip_id, driver_id=trip.driver_id, start_time=trip.start_time, end_time=trip.end_time,
        points_in=route.points_in, points_out=len(route.coordinates), points_skipped=route.points_skipped,
        tolerance_m=route.tolerance_m, max_points=rules.max_points, truncated=truncated, positions_withheld=withheld))


def _utc(ms: int) -> datetime:
    return _EPOCH + timedelta(milliseconds=ms)  # exact, unlike fromtimestamp(ms / 1000)


def _history_item(row: Row) -> RiskHistoryView:
    return RiskHistoryView(
        score_id=row["score_id"], scored_at=row["scored_at"], score=float(row["score"]), band=row["band"],
        model_version=row["model_version"], feature_hash=row["feature_hash"], credibility=float(row["credibility"]),
        trip_id=row["trip_id"],
    )
