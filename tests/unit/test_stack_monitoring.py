"""The generated Prometheus/Alertmanager configuration (autoins/stack/monitoring.py): pure renderers."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from autoins.stack.monitoring import (
    RULES_FILE,
    render_alertmanager_config,
    render_prometheus_config,
    render_rules,
)
from config.settings import Settings

pytestmark = pytest.mark.unit


def test_the_rules_are_loaded_unchanged_unless_the_for_durations_are_overridden():
    text = RULES_FILE.read_text()
    assert render_rules(text, None) == text
    rules = yaml.safe_load(render_rules(text, 2.5))
    durations = {r["alert"]: r["for"] for g in rules["groups"] for r in g["rules"]}
    assert set(durations.values()) == {"2500ms"} and "KafkaConsumerLagHigh" in durations


def test_prometheus_scrapes_rays_discovery_file_and_the_stacks_targets_and_alerts_the_alertmanager(tmp_path: Path):
    settings = Settings(ray_metrics_discovery_file=Path("/tmp/ray-x/sd.json"), prometheus_scrape_interval_s=2,
                        prometheus_evaluation_interval_s=1)
    config = yaml.safe_load(render_prometheus_config(settings, tmp_path, 19093))
    assert config["global"]["scrape_interval"] == "2000ms" and config["global"]["evaluation_interval"] == "1000ms"
    assert config["scrape_configs"][0]["file_sd_configs"][0]["files"] == [
        "/tmp/ray-x/sd.json", str(tmp_path / "prometheus" / "targets" / "*.json")]
    assert config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == ["127.0.0.1:19093"]
    assert config["rule_files"] == [str(tmp_path / "prometheus" / "alerts.yml")]


def test_alertmanager_posts_to_the_webhook_when_one_is_configured():
    with_hook = yaml.safe_load(render_alertmanager_config(Settings(alert_webhook_url="http://127.0.0.1:1/hook",
                                                                   alert_group_wait_s=0.5)))
    assert with_hook["route"]["receiver"] == "webhook" and with_hook["route"]["group_wait"] == "500ms"
    assert with_hook["receivers"][0]["webhook_configs"][0]["url"] == "http://127.0.0.1:1/hook"
    without = yaml.safe_load(render_alertmanager_config(Settings()))
    assert without["receivers"] == [{"name": "ui-only"}]


def test_without_the_binaries_they_are_a_not_installed_row_and_no_failure(monkeypatch, tmp_path: Path):
    from autoins.stack import monitoring, services
    from autoins.stack.endpoints import Service
    from autoins.stack.state import StackState

    monkeypatch.setattr(monitoring, "installed", lambda: False)
    status = services._monitoring_status(Service.PROMETHEUS, StackState())
    assert not status.required and not status.answers and "not installed" in status.detail
    outcomes, state = services._monitoring_up(Settings(), StackState(), tmp_path, [])
    assert [o.action for o in outcomes] == ["not installed", "not installed"] and state == StackState()
