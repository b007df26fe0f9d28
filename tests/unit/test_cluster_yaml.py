import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def load():
    from ray.autoscaler._private.util import prepare_config, validate_config

    config = yaml.safe_load((ROOT / "cluster.yaml").read_text())
    prepared = prepare_config(config)
    validate_config(prepared)
    return prepared


def test_cluster_yaml_is_valid_for_the_local_provider():
    prepared = load()
    assert prepared["provider"]["type"] == "local"
    assert set(prepared["provider"]["worker_ips"]) == {"10.0.0.11", "10.0.0.12"}
    for command in prepared["head_start_ray_commands"] + prepared["worker_start_ray_commands"]:
        assert "--metrics-export-port=8080" in command
        assert "ray stop" not in command


def test_only_the_source_is_synced_to_the_nodes():
    excluded = set(load()["rsync_exclude"])
    assert {".venv", ".autoins", ".git"} <= excluded


def test_no_ray_port_collides_with_the_services_on_the_nodes():
    prepared = load()
    commands = " ".join(prepared["head_start_ray_commands"] + prepared["worker_start_ray_commands"])
    ports = {int(p) for p in re.findall(r"(?:--port=|:)(\d{4,5})\b", commands)}
    assert ports and not ports & {5432, 6379, 9092, 8000}


def test_every_node_starts_with_the_ingress_environment_autoins_serve_uses():
    import shlex

    from autoins.ingress import ingress_environment

    wanted = ingress_environment(haproxy=True)
    prepared = load()
    for command in prepared["head_start_ray_commands"] + prepared["worker_start_ray_commands"]:
        words = [word for word in shlex.split(command) if word.startswith("RAY_") and "=" in word]
        assignments = dict(word.split("=", 1) for word in words)
        assert {k: assignments.get(k) for k in wanted} == wanted, command
