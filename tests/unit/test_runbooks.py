"""docs/runbooks/ stays true to the system: every alert rule has a runbook, and every alert, dashboard panel and
`autoins` command a runbook names exists."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import typer.main
import yaml

from autoins.cli import app
from autoins.dashboards import OVERVIEW

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]
RUNBOOKS = sorted((ROOT / "docs" / "runbooks").glob("*.md"))
PAGES = [p for p in RUNBOOKS if p.name != "README.md"]


def _alert_rules() -> set[str]:
    rules = yaml.safe_load((ROOT / "config" / "prometheus" / "alerts.yml").read_text(encoding="utf-8"))
    return {r["alert"] for g in rules["groups"] for r in g["rules"]}


def _header(page: Path, label: str) -> str:
    match = re.search(rf"^- \*\*{label}:\*\* (.+(?:\n  .+)*)", page.read_text(encoding="utf-8"), re.M)
    assert match, f"{page.name} has no '{label}' line"
    return match.group(1)


def _commands() -> set[tuple[str, ...]]:
    """Every `autoins` command path: ("status",), ("dlq", "replay"), …"""
    click_app = typer.main.get_command(app)
    paths = set()
    for name, command in click_app.commands.items():
        paths.add((name,))
        for sub in getattr(command, "commands", {}):
            paths.add((name, sub))
    return paths


def test_there_is_a_runbook_for_each_incident_the_issue_names():
    assert {p.name for p in PAGES} == {
        "services-down.md", "lag-climbing.md", "dlq-growing.md", "actor-crash-loop.md", "node-lost.md",
        "model-rollback.md", "partitions-and-retention.md", "rotating-secrets.md", "model-drift.md"}


def test_every_alert_has_a_runbook_and_every_named_alert_exists():
    rules = _alert_rules()
    named = {page.name: set(re.findall(r"`([A-Za-z][A-Za-z0-9]*)`", _header(page, "Alerts"))) for page in PAGES}
    assert {name for alerts in named.values() for name in alerts} == rules
    for page in PAGES:
        assert named[page.name] or "none" in _header(page, "Alerts"), page.name


def test_every_named_dashboard_panel_exists():
    panels = {panel.title for row in OVERVIEW for panel in row.panels}
    for page in PAGES:
        named = set(re.findall(r'"([^"]+)"', _header(page, "Dashboard panels")))
        assert named and named <= panels, (page.name, sorted(named - panels))


def test_every_autoins_command_in_a_runbook_exists():
    commands = _commands()
    for page in RUNBOOKS:
        for words in re.findall(r"\bautoins ((?:[a-z][a-z-]*)(?: [a-z][a-z-]*)?)", page.read_text(encoding="utf-8")):
            parts = tuple(words.split())
            assert parts in commands or parts[:1] in commands, (page.name, words)
            if len(parts) == 2 and (parts[0],) in commands and any(c[0] == parts[0] and len(c) == 2 for c in commands):
                assert parts in commands, (page.name, words)  # a group's subcommand must be one of its own
