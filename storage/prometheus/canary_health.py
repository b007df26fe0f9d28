"""A rollout's canary as Prometheus sees it (usecases/ports/rollout.py `CanaryHealth`).

Ray tags every metric a Serve replica records with its `application`, so the canary app's series are its own:
- api:   `http_request_duration_seconds` (requests, 5xx share, p95), recorded by the API's middleware;
- model: `ml_assessments_total` by outcome (requests and error share) and `ml_inference_duration_seconds` (p95).
Metric names are as scraped (`ray_` prefix, counters end in `_total`). Ray's agents report every ~10 s, so a
window shorter than ~30 s may hold too few samples to rate over.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from domain.rollout import SideHealth


@dataclass(frozen=True, slots=True)
class SideQueries:
    """PromQL templates over `{app}` (the canary app) and `{w}` (the window, e.g. 60s)."""

    requests: str
    errors: str
    p95_s: str


API_QUERIES = SideQueries(
    requests='sum(increase(ray_http_request_duration_seconds_count{{application="{app}"}}[{w}]))',
    errors='sum(increase(ray_http_request_duration_seconds_count{{application="{app}",status=~"5.."}}[{w}]))',
    p95_s='histogram_quantile(0.95, sum by (le) '
          '(rate(ray_http_request_duration_seconds_bucket{{application="{app}"}}[{w}])))',
)
MODEL_QUERIES = SideQueries(
    requests='sum(increase(ray_ml_assessments_total{{application="{app}"}}[{w}]))',
    errors='sum(increase(ray_ml_assessments_total{{application="{app}",outcome="error"}}[{w}]))',
    p95_s='histogram_quantile(0.95, sum by (le) '
          '(rate(ray_ml_inference_duration_seconds_bucket{{application="{app}"}}[{w}])))',
)


class PrometheusUnavailable(Exception):
    pass


class PrometheusCanaryHealth:
    def __init__(self, url: str, queries: SideQueries, timeout_s: float = 5.0) -> None:
        self._url = url.rstrip("/")
        self._queries = queries
        self._timeout_s = timeout_s

    async def health(self, canary_app: str, window_s: float) -> SideHealth:
        window = f"{max(1, round(window_s))}s"
        async with httpx.AsyncClient(timeout=self._timeout_s) as client:
            requests = await self._scalar(client, self._queries.requests.format(app=canary_app, w=window))
            errors = await self._scalar(client, self._queries.errors.format(app=canary_app, w=window))
            p95 = await self._scalar(client, self._queries.p95_s.format(app=canary_app, w=window))
        total = requests or 0.0
        return SideHealth(requests=total, error_rate=(errors or 0.0) / total if total > 0 else None, p95_s=p95)

    async def _scalar(self, client: httpx.AsyncClient, query: str) -> float | None:
        """The query's single value; None when it has no series or is NaN (no requests in the window)."""
        try:
            response = await client.get(f"{self._url}/api/v1/query", params={"query": query})
        except httpx.HTTPError as error:
            raise PrometheusUnavailable(f"Prometheus at {self._url} does not answer: {error}") from None
        if response.status_code != 200:
            raise PrometheusUnavailable(f"Prometheus refused {query!r}: {response.status_code} {response.text[:200]}")
        result = response.json()["data"]["result"]
        if not result:
            return None
        value = float(result[0]["value"][1])
        return None if value != value else value  # NaN: a quantile over no observations
