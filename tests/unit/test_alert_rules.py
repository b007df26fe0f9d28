"""The alert rules (config/prometheus/alerts.yml) are valid and each fires on its §12/§13 figure: `promtool
check rules` and `promtool test rules` (the cases in alerts_test.yml). promtool comes with Debian's
`prometheus` package (`make install` installs it on a root apt machine); without it these skip."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from config.settings import PROJECT_ROOT

pytestmark = pytest.mark.unit
RULES_DIR = PROJECT_ROOT / "config" / "prometheus"
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(PROMTOOL is None, reason="promtool is not installed (apt-get install prometheus)")


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PROMTOOL, *args], cwd=RULES_DIR, capture_output=True, text=True, timeout=60, check=False)


@needs_promtool
def test_the_alert_rules_are_valid_prometheus_rules():
    result = _promtool("check", "rules", "alerts.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 12 rules found" in result.stdout


@needs_promtool
def test_every_alert_fires_on_its_threshold_and_not_below_it():
    result = _promtool("test", "rules", "alerts_test.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_a_promtool_case():
    import yaml

    rules = yaml.safe_load((RULES_DIR / "alerts.yml").read_text())
    alerts = {r["alert"] for g in rules["groups"] for r in g["rules"]}
    cases = yaml.safe_load((RULES_DIR / "alerts_test.yml").read_text())
    tested = {t["alertname"] for case in cases["tests"] for t in case.get("alert_rule_test", [])
              if t.get("exp_alerts")}
    assert alerts == tested
