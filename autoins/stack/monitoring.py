"""Prometheus and Alertmanager for the local stack, from Debian's `prometheus` and `prometheus-alertmanager`.

Optional: without the binaries `stack up` reports them "not installed" and goes on. Configuration is generated
into `<data_dir>/prometheus/` and `<data_dir>/alertmanager/` from settings (pure renderers below):
- Prometheus scrapes every Ray node's metrics agent through file service discovery: Ray's own discovery file
  (written by a head with the dashboard; `ray_metrics_discovery_file`, by default the one of the head
  `autoins serve` starts) and any `<data_dir>/prometheus/targets/*.json` (tests drop theirs there). It loads
  config/prometheus/alerts.yml, every `for:` replaced by `alert_for_s` when set, and sends alerts to the
  Alertmanager.
- Alertmanager routes every alert to `alert_webhook_url` (none set: a receiver that only keeps them in its UI).
"""

from __future__ import annotations

import json
import shutil
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import yaml

from autoins.stack.processes import free_tcp_port, port_listening, spawn, wait_ready
from autoins.stack.state import ManagedProcess
from config.settings import PROJECT_ROOT, Settings

RULES_FILE = PROJECT_ROOT / "config" / "prometheus" / "alerts.yml"
START_TIMEOUT_S = 30.0
PROMETHEUS_BINARIES = ("prometheus",)
ALERTMANAGER_BINARIES = ("prometheus-alertmanager", "alertmanager")  # Debian's name, then upstream's


def find_binary(names: tuple[str, ...]) -> Path | None:
    for name in names:
        found = shutil.which(name) or (f"/usr/bin/{name}" if Path(f"/usr/bin/{name}").is_file() else None)
        if found:
            return Path(found)
    return None


def installed() -> bool:
    return find_binary(PROMETHEUS_BINARIES) is not None and find_binary(ALERTMANAGER_BINARIES) is not None


def _seconds(value: float) -> str:
    return f"{int(value * 1000)}ms"


# -- pure renderers ----------------------------------------------------------------------------------------


def render_rules(rules_text: str, for_s: float | None) -> str:
    """The alert rules as Prometheus loads them: unchanged, or every rule's `for:` set to `for_s`."""
    if for_s is None:
        return rules_text
    rules = yaml.safe_load(rules_text)
    for group in rules["groups"]:
        for rule in group["rules"]:
            rule["for"] = _seconds(for_s)
    return yaml.safe_dump(rules, sort_keys=False)


def discovery_files(settings: Settings, data_dir: Path) -> list[str]:
    from autoins.ray_head import temp_dir_for

    ray_file = settings.ray_metrics_discovery_file or (
        temp_dir_for(settings) / "session_latest" / "prom_metrics_service_discovery.json")
    return [str(ray_file), str(data_dir / "prometheus" / "targets" / "*.json")]


def render_prometheus_config(settings: Settings, data_dir: Path, alertmanager_port: int) -> str:
    config = {
        "global": {"scrape_interval": _seconds(settings.prometheus_scrape_interval_s),
                   "evaluation_interval": _seconds(settings.prometheus_evaluation_interval_s),
                   "scrape_timeout": _seconds(min(10.0, settings.prometheus_scrape_interval_s))},
        "rule_files": [str(data_dir / "prometheus" / "alerts.yml")],
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{alertmanager_port}"]}]}]},
        "scrape_configs": [{"job_name": "ray", "file_sd_configs": [
            {"files": discovery_files(settings, data_dir), "refresh_interval": "5s"}]}],
    }
    return yaml.safe_dump(config, sort_keys=False)


def render_alertmanager_config(settings: Settings) -> str:
    receiver: dict = {"name": "webhook" if settings.alert_webhook_url else "ui-only"}
    if settings.alert_webhook_url:
        receiver["webhook_configs"] = [{"url": settings.alert_webhook_url, "send_resolved": True}]
    wait = settings.alert_group_wait_s
    config = {
        "route": {"receiver": receiver["name"], "group_by": ["alertname", "topic", "consumer_group"],
                  "group_wait": _seconds(wait), "group_interval": _seconds(max(1.0, wait)),
                  "repeat_interval": "4h"},
        "receivers": [receiver],
    }
    return yaml.safe_dump(config, sort_keys=False)


def write_target_file(data_dir: Path, name: str, targets: list[str]) -> Path:
    """A file-SD file Prometheus picks up within 5 s (tests: the session's Ray nodes)."""
    path = data_dir / "prometheus" / "targets" / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps([{"targets": targets, "labels": {"source": name}}]), encoding="utf-8")
    return path


# -- processes ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Monitoring:
    prometheus: ManagedProcess
    prometheus_port: int
    alertmanager: ManagedProcess
    alertmanager_port: int

    @property
    def prometheus_url(self) -> str:
        return f"http://127.0.0.1:{self.prometheus_port}"

    @property
    def alertmanager_url(self) -> str:
        return f"http://127.0.0.1:{self.alertmanager_port}"


def port_or_free(port: int) -> int:
    """The configured port when nothing listens there, else a free one (stack up never fails over a port)."""
    return free_tcp_port() if port_listening("127.0.0.1", port) else port


def http_ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=0.5) as response:
            return response.status == 200
    except OSError:
        return False


def start_alertmanager(settings: Settings, data_dir: Path, port: int, binary: Path,
                       timeout_s: float = START_TIMEOUT_S) -> ManagedProcess:
    workdir = data_dir / "alertmanager"
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "alertmanager.yml").write_text(render_alertmanager_config(settings), encoding="utf-8")
    argv = [str(binary), f"--config.file={workdir / 'alertmanager.yml'}", f"--storage.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address="]  # no HA gossip port
    proc = spawn(argv, workdir / "alertmanager.log", cwd=workdir)
    wait_ready(proc, lambda: http_ready(f"http://127.0.0.1:{port}/-/ready"), timeout_s,
               f"Alertmanager ({binary}) on 127.0.0.1:{port}")
    return proc


def start_prometheus(settings: Settings, data_dir: Path, port: int, alertmanager_port: int, binary: Path,
                     timeout_s: float = START_TIMEOUT_S) -> ManagedProcess:
    workdir = data_dir / "prometheus"
    (workdir / "targets").mkdir(parents=True, exist_ok=True)
    (workdir / "alerts.yml").write_text(
        render_rules(RULES_FILE.read_text(encoding="utf-8"), settings.alert_for_s), encoding="utf-8")
    (workdir / "prometheus.yml").write_text(render_prometheus_config(settings, data_dir, alertmanager_port),
                                            encoding="utf-8")
    argv = [str(binary), f"--config.file={workdir / 'prometheus.yml'}", f"--storage.tsdb.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}", "--storage.tsdb.retention.time=15d", "--web.enable-lifecycle"]
    proc = spawn(argv, workdir / "prometheus.log", cwd=workdir)
    wait_ready(proc, lambda: http_ready(f"http://127.0.0.1:{port}/-/ready"), timeout_s,
               f"Prometheus ({binary}) on 127.0.0.1:{port}")
    return proc


def start_monitoring(settings: Settings, data_dir: Path, prometheus_port: int | None = None,
                     alertmanager_port: int | None = None) -> Monitoring:
    """Alertmanager, then Prometheus pointed at it; BinaryNotFound when either is not installed.
    Stop both with processes.stop_process."""
    from autoins.stack.errors import BinaryNotFound
    from autoins.stack.processes import stop_process

    prometheus, alertmanager = find_binary(PROMETHEUS_BINARIES), find_binary(ALERTMANAGER_BINARIES)
    if prometheus is None or alertmanager is None:
        raise BinaryNotFound("Prometheus/Alertmanager are not installed (apt-get install prometheus "
                             "prometheus-alertmanager)")
    am_port = alertmanager_port or port_or_free(settings.alertmanager_port)
    am = start_alertmanager(settings, data_dir, am_port, alertmanager)
    try:
        prom_port = prometheus_port or port_or_free(settings.prometheus_port)
        prom = start_prometheus(settings, data_dir, prom_port, am_port, prometheus)
    except BaseException:
        stop_process(am)
        raise
    return Monitoring(prom, prom_port, am, am_port)
