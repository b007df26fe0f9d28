"""The API's metric families (plan §5.1) and the one-scrape view of the whole cluster (DESIGN.md §6).

Metrics are recorded with `ray.serve.metrics` (= `ray.util.metrics` plus the `deployment`, `replica`,
`application` tags inside a Serve replica). Each Ray node's agent exports every process's metrics at
`<node>:<MetricsExportPort>/metrics` with a `ray_` prefix, also when Ray runs without the dashboard
(checked on 2.60: app metrics appear within one ~10 s report interval). `/metrics` fetches every node's
export and merges them (`merge_exposition`), so one scrape shows every replica and actor.
Never tag by driver id: a tag value per driver would grow the agents' memory without bound.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
from ray.serve.metrics import Counter, Gauge, Histogram

LATENCY_BOUNDARIES_S = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]
DISCOVERY_FILE = "prom_metrics_service_discovery.json"  # ray._private.ray_constants.PROMETHEUS_SERVICE_DISCOVERY_FILE


class PlatformMetrics:
    """One set of metric objects per process (create them inside the replica: Serve tags are read then).

    Recording is a local call into the core worker (no I/O); the agent pulls the values."""

    def __init__(self) -> None:
        self.http_duration = Histogram(
            "http_request_duration_seconds", description="HTTP request duration, by route template",
            boundaries=LATENCY_BOUNDARIES_S, tag_keys=("method", "endpoint", "status"),
        )
        self.cache_hits = Counter("cache_hits", description="Cache hits (Ray adds _total)", tag_keys=("cache_type",))
        self.cache_misses = Counter("cache_misses", description="Cache misses (Ray adds _total)",
                                    tag_keys=("cache_type",))
        self.cache_latency = Histogram(
            "cache_latency_seconds", description="Redis (L2) call latency: operation l2_read | l2_write",
            boundaries=LATENCY_BOUNDARIES_S,
            tag_keys=("operation",),
        )
        self.ingest_readings = Counter(
            "api_ingest_readings", description="Readings posted to the ingest endpoint, by outcome",
            tag_keys=("outcome",),
        )
        self.ws_connections = Gauge("websocket_connections", description="Open WebSockets on this replica",
                                    tag_keys=("kind",))
        self.ws_dropped = Counter("websocket_dropped", description="WebSockets closed by the server, by reason",
                                  tag_keys=("reason",))
        self.active_drivers = Gauge("active_drivers_total", description="Drivers with is_active")
        self.active_trips = Gauge("active_trips_total", description="Drivers whose latest trip event (24 h) is a start")
        self.events_per_second = Gauge(
            "events_per_second", description="Readings made durable per second (stored offsets), last interval"
        )
        self.average_risk_score = Gauge("average_risk_score", description="Mean of every driver's latest score, 0..100")

    def observe_http(self, method: str, endpoint: str, status: int, duration_s: float) -> None:
        self.http_duration.observe(duration_s, tags={"method": method, "endpoint": endpoint, "status": str(status)})

    def record_cache(self, cache_type: str, hit: bool, count: int = 1) -> None:
        """`cache_type`: "l1" (in-process) or "l2" (Redis); `count` lookups at once."""
        (self.cache_hits if hit else self.cache_misses).inc(count, tags={"cache_type": cache_type})

    def observe_cache_latency(self, operation: str, duration_s: float) -> None:
        self.cache_latency.observe(duration_s, tags={"operation": operation})


_metrics: PlatformMetrics | None = None


def platform_metrics() -> PlatformMetrics:
    """The process's metric objects, created on first use (inside the replica, after Serve set its context)."""
    global _metrics
    if _metrics is None:
        _metrics = PlatformMetrics()
    return _metrics


# -- business gauges ---------------------------------------------------------------------------------


@dataclass
class EventRate:
    """events/s from a monotonically growing total sampled at wall-clock times (counter resets → 0)."""

    last_total: int | None = None
    last_at_s: float | None = None

    def update(self, total: int, at_s: float) -> float:
        previous, previous_at = self.last_total, self.last_at_s
        self.last_total, self.last_at_s = total, at_s
        if previous is None or previous_at is None or at_s <= previous_at or total < previous:
            return 0.0
        return (total - previous) / (at_s - previous_at)


# -- the cluster scrape ------------------------------------------------------------------------------


def discovery_targets(session_dir: str | os.PathLike | None) -> list[str] | None:
    """`host:port` targets from the service-discovery file the Ray dashboard writes into the session dir
    (Prometheus file_sd format), or None when there is none (Ray started without the dashboard)."""
    if not session_dir:
        return None
    path = Path(session_dir) / DISCOVERY_FILE
    try:
        groups = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return [t for g in groups if isinstance(g, dict) for t in g.get("targets", []) if isinstance(t, str)]


def node_targets(nodes: Iterable[dict]) -> list[str]:
    """The same list the dashboard writes, from `ray.nodes()`: every live node's metrics export address."""
    return [
        f"{n['NodeManagerAddress']}:{n['MetricsExportPort']}"
        for n in nodes
        if n.get("alive") and n.get("MetricsExportPort")
    ]


class ClusterTargets:
    """Export addresses of every node, refreshed at most every `ttl_s` (a GCS call, run in a thread)."""

    def __init__(self, ttl_s: float = 15.0) -> None:
        self.ttl_s = ttl_s
        self._targets: list[str] = []
        self._at_s = float("-inf")

    async def get(self) -> list[str]:
        if time.monotonic() - self._at_s > self.ttl_s or not self._targets:
            self._targets = await asyncio.to_thread(_lookup_targets)
            self._at_s = time.monotonic()
        return self._targets


def _lookup_targets() -> list[str]:
    import ray

    worker = ray._private.worker.global_worker
    session_dir = getattr(getattr(worker, "node", None), "get_session_dir_path", lambda: None)()
    from_file = discovery_targets(session_dir)
    return from_file if from_file else node_targets(ray.nodes())


@dataclass(frozen=True)
class ScrapeResult:
    text: str
    failed: dict[str, str]  # target → reason


async def scrape_cluster(client: httpx.AsyncClient, targets: Sequence[str], timeout_s: float = 2.0) -> ScrapeResult:
    """Fetch every target concurrently; merge what answered. A node that does not answer in time is
    reported in `failed` (and as a comment in the text) instead of failing the whole scrape."""

    async def one(target: str) -> str:
        response = await client.get(f"http://{target}/metrics", timeout=timeout_s)
        response.raise_for_status()
        return response.text

    results = await asyncio.gather(*(one(t) for t in targets), return_exceptions=True)
    texts = [r for r in results if isinstance(r, str)]
    failed = {t: repr(r)[:200] for t, r in zip(targets, results, strict=True) if not isinstance(r, str)}
    # Merging MBs of text is CPU work: off the event loop, which keeps answering requests meanwhile.
    text = await asyncio.to_thread(merge_exposition, texts)
    if failed:
        text += "".join(f"# scrape of {t} failed: {reason}\n" for t, reason in failed.items())
    return ScrapeResult(text, failed)


def merge_exposition(texts: Iterable[str]) -> str:
    """Merge Prometheus text exports: one HELP/TYPE per family, every family's samples together (a
    family split across two blocks is invalid exposition), exact duplicate samples once. Pure."""
    order: list[str] = []
    meta: dict[str, dict[str, str]] = {}
    samples: dict[str, dict[str, None]] = {}  # dict as an ordered set
    for text in texts:
        family = None
        for line in text.splitlines():
            if not line.strip():
                continue
            if line.startswith("# HELP ") or line.startswith("# TYPE "):
                kind, name = line[2:6], line[7:].split(" ", 1)[0]
                family = name
                if name not in meta:
                    order.append(name)
                    meta[name], samples[name] = {}, {}
                meta[name].setdefault(kind, line)
                continue
            if line.startswith("#"):
                continue
            name = family if family is not None and _belongs(line, family) else _sample_name(line)
            if name not in meta:
                order.append(name)
                meta[name], samples[name] = {}, {}
            samples[name][line] = None
    out: list[str] = []
    for name in order:
        for kind in ("HELP", "TYPE"):
            if kind in meta[name]:
                out.append(meta[name][kind])
        out.extend(samples[name])
    return "\n".join(out) + "\n" if out else ""


_SUFFIXES = ("_bucket", "_count", "_sum", "_total", "_created", "_info")


def _sample_name(line: str) -> str:
    end = min((i for i in (line.find("{"), line.find(" ")) if i >= 0), default=len(line))
    return line[:end]


def _belongs(line: str, family: str) -> bool:
    name = _sample_name(line)
    return name == family or any(name == family + s for s in _SUFFIXES)
