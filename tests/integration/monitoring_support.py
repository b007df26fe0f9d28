"""A real Prometheus (and Alertmanager) on free ports scraping the session's Ray nodes, as `autoins stack up` runs
them, for the tests that read metrics back (test_prometheus, test_rollout). Intervals are cut to 1 s."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from autoins.stack.monitoring import Monitoring, installed, start_monitoring, write_target_file
from autoins.stack.processes import free_tcp_port, stop_process
from config.settings import Settings
from deployments.metrics import node_targets

NOT_INSTALLED = ("Prometheus/Alertmanager are not installed (apt-get install prometheus prometheus-alertmanager; "
                 "`make install` does it as root)")
__all__ = ["NOT_INSTALLED", "installed", "promql", "session_prometheus"]


@contextmanager
def session_prometheus(ray_session, settings: Settings, data_dir: Path, **overrides) -> Iterator[Monitoring]:
    settings = settings.with_overrides(prometheus_scrape_interval_s=1.0, prometheus_evaluation_interval_s=1.0,
                                       **overrides)
    running = start_monitoring(settings, data_dir, free_tcp_port(), free_tcp_port())
    write_target_file(data_dir, "ray-session", node_targets(ray_session.nodes()))
    try:
        yield running
    finally:
        stop_process(running.prometheus)
        stop_process(running.alertmanager)


def promql(prometheus: Monitoring, query: str) -> list[dict]:
    response = httpx.get(f"{prometheus.prometheus_url}/api/v1/query", params={"query": query}, timeout=5)
    assert response.status_code == 200, response.text
    return response.json()["data"]["result"]
