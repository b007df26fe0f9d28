"""The import rules of DESIGN.md §3, checked by walking every module's imports (docs/LAYOUT.md)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("config", "domain", "storage", "usecases", "actors", "deployments", "autoins")

# What each package may import of the project (besides itself). Everything imports `config` and `domain`
# except `domain` (pure: rules come in as arguments) and `config` (the bottom: settings, logging, names).
ALLOWED = {
    "domain": set(),
    "config": {"domain"},
    "storage": {"config", "domain"},
    "usecases": {"config", "domain", "storage"},
    "actors": {"config", "domain", "storage", "usecases"},
    "deployments": {"config", "domain", "storage", "usecases"},
    "autoins": {"config", "domain", "storage", "usecases", "actors", "deployments"},
}
# Third-party systems each layer must not touch: Ray lives in actors/, deployments/, the shell and the one
# storage adapter that reaches the RiskModel through a Serve handle; HTTP frameworks only in deployments/.
FORBIDDEN_THIRD_PARTY = {
    "domain": {"ray", "asyncpg", "redis", "confluent_kafka", "fastapi", "starlette", "structlog"},
    "config": {"ray", "asyncpg", "redis", "confluent_kafka", "fastapi", "starlette"},
    "storage": {"fastapi", "starlette"},
    "usecases": {"ray", "asyncpg", "redis", "confluent_kafka", "fastapi", "starlette"},
}
RAY_IN_STORAGE = {"storage/serve/risk_model.py", "storage/metrics/db_metrics.py"}
# Adapters implement the ports: storage may import `usecases.ports` (Protocols, the data and errors that cross
# them), never a handler.
PORTS = "usecases.ports"


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


@pytest.mark.unit
@pytest.mark.parametrize("package", PACKAGES)
def test_each_layer_imports_only_the_layers_below_it(package):
    wrong = []
    for path in _modules(package):
        for name in _imports(path):
            top = name.split(".")[0]
            port = package == "storage" and (name == PORTS or name.startswith(PORTS + "."))
            if top in PACKAGES and top != package and top not in ALLOWED[package] and not port:
                wrong.append(f"{path.relative_to(ROOT)} imports {name}")
    assert not wrong, "\n".join(wrong)


@pytest.mark.unit
@pytest.mark.parametrize("package", sorted(FORBIDDEN_THIRD_PARTY))
def test_lower_layers_do_not_touch_the_systems_above_them(package):
    wrong = []
    for path in _modules(package):
        relative = path.relative_to(ROOT).as_posix()
        for name in _imports(path):
            top = name.split(".")[0]
            forbidden = FORBIDDEN_THIRD_PARTY[package] | ({"ray"} if package == "storage" else set())
            if top in forbidden and relative not in RAY_IN_STORAGE:
                wrong.append(f"{relative} imports {name}")
    assert not wrong, "\n".join(wrong)


@pytest.mark.unit
def test_the_walk_sees_every_package():
    assert all(_modules(p) for p in PACKAGES if (ROOT / p).is_dir())
    assert _modules("storage") and _modules("actors")
