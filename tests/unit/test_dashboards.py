"""The Grafana dashboard is generated from autoins/dashboards.py: the committed JSON matches the code, every query
names only families the code records (or Ray's node metrics), and promtool parses every expression.
(tests/integration/test_prometheus.py runs each query against a real Prometheus on a running system.)"""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from autoins.dashboards import OVERVIEW, all_queries, build_overview, overview_path, render
from tests.unit.test_operations_metrics import recorded_families

pytestmark = pytest.mark.unit
HISTOGRAM_SERIES = ("_bucket", "_sum", "_count")


def test_the_committed_dashboard_is_what_the_code_generates():
    assert overview_path().read_text(encoding="utf-8") == render(build_overview()), (
        "config/grafana is out of date: run `autoins dashboards --write`")


def test_the_dashboard_has_the_plans_section_10_panels():
    titles = {panel.title for row in OVERVIEW for panel in row.panels}
    assert {"Request rate", "Latency p50 / p95 / p99", "Error rate", "DB query time p95", "Connection pools",
            "Cache hit rate", "Kafka consumer lag", "Events per second", "ML inference time", "ML batch size",
            "Active drivers and trips", "Trips and scores per hour"} <= titles
    model = build_overview()
    panels = [p for p in model["panels"] if p["type"] == "timeseries"]
    assert len(panels) == len(titles) and all(p["targets"] and p["datasource"]["uid"] == "${datasource}"
                                              for p in panels)
    assert all(len({t["refId"] for t in p["targets"]}) == len(p["targets"]) for p in panels)


def test_every_query_names_only_families_the_code_records():
    recorded = recorded_families()
    unknown = set()
    for _title, expr in all_queries():
        for name in re.findall(r"\bray_[a-z0-9_]+", expr):
            family = next((name[: -len(s)] for s in HISTOGRAM_SERIES if name.endswith(s)), name)
            if family not in recorded and name not in recorded:
                unknown.add(name)
    assert unknown == set(), "queried but recorded nowhere (a typo, or a family that was renamed)"


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed (apt-get install prometheus)")
def test_promtool_parses_every_query(tmp_path):
    rules = ["groups:", "  - name: dashboard", "    rules:"]
    for n, (_title, expr) in enumerate(all_queries()):
        rules += [f"      - record: dashboard:query_{n}", f"        expr: '{expr}'"]
    path = tmp_path / "dashboard-queries.yml"
    path.write_text("\n".join(rules) + "\n", encoding="utf-8")
    checked = subprocess.run(["promtool", "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"{len(all_queries())} rules found" in checked.stdout
