"""docs/OPERATIONS.md lists exactly the metric families the code records: every family defined with Ray's metric
classes (ray.util.metrics / ray.serve.metrics), named as Ray's agent exports it, and nothing else.
(tests/integration/test_prometheus.py checks that the plan's §5.1 families really reach Prometheus.)"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("actors", "deployments", "storage", "autoins", "usecases")
RAY_METRIC_MODULES = ("ray.util.metrics", "ray.serve.metrics")


def _families_in(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    kinds = {alias.asname or alias.name: alias.name for node in ast.walk(tree)
             if isinstance(node, ast.ImportFrom) and node.module in RAY_METRIC_MODULES for alias in node.names}
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in kinds \
                and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
            found.add(exported_name(kinds[node.func.id], node.args[0].value))
    return found


def exported_name(kind: str, name: str) -> str:
    """As Ray's agent exports it: a `ray_` prefix, and counters end in `_total` (added when missing)."""
    if kind == "Counter" and not name.endswith("_total"):
        name += "_total"
    return f"ray_{name}"


def recorded_families() -> set[str]:
    return {f for package in SOURCES for path in (ROOT / package).rglob("*.py") for f in _families_in(path)}


def documented_families() -> set[str]:
    text = (ROOT / "docs" / "OPERATIONS.md").read_text(encoding="utf-8")
    section = text[text.index("- Families (names as scraped"):text.index("- Never tagged by driver id")]
    return {name for name in re.findall(r"`(ray_[a-z0-9_]+)`", section)}


def test_the_code_defines_the_families_this_test_knows_of():
    assert {"ray_http_request_duration_seconds", "ray_kafka_consumer_lag", "ray_db_query_duration_seconds",
            "ray_cache_hits_total", "ray_active_drivers_total"} <= recorded_families()


def test_operations_lists_every_recorded_family_and_nothing_else():
    recorded, documented = recorded_families(), documented_families()
    assert sorted(documented - recorded) == [], "listed in docs/OPERATIONS.md but recorded nowhere"
    assert sorted(recorded - documented) == [], "recorded but missing from docs/OPERATIONS.md"
