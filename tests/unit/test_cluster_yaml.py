from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def test_cluster_yaml_is_valid_for_the_local_provider():
    from ray.autoscaler._private.util import prepare_config, validate_config

    config = yaml.safe_load((ROOT / "cluster.yaml").read_text())
    prepared = prepare_config(config)
    validate_config(prepared)
    assert prepared["provider"]["type"] == "local"
    assert set(prepared["provider"]["worker_ips"]) == {"10.0.0.11", "10.0.0.12"}
    for command in prepared["head_start_ray_commands"] + prepared["worker_start_ray_commands"]:
        assert "--metrics-export-port=8080" in command
        assert "ray stop" not in command
