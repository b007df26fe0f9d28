"""serve_config.yaml is valid for Serve, names the apps and deployments of config/names.py, and its
import paths resolve to the application builders."""

from __future__ import annotations

import importlib

import yaml
from ray.serve.schema import ServeDeploySchema

from config.names import API_APP, API_DEPLOYMENT, RISK_APP, RISK_DEPLOYMENT, WS_APP, WS_DEPLOYMENT
from config.settings import PROJECT_ROOT, Settings
from deployments.builder import API_ROUTE, WS_ROUTE, absolute_paths


def _config() -> ServeDeploySchema:
    return ServeDeploySchema.model_validate(yaml.safe_load((PROJECT_ROOT / "serve_config.yaml").read_text()))


def test_serve_config_passes_serves_schema_with_the_three_apps():
    apps = {app.name: app for app in _config().applications}
    assert set(apps) == {API_APP, WS_APP, RISK_APP}
    assert apps[API_APP].route_prefix == API_ROUTE
    assert apps[WS_APP].route_prefix == WS_ROUTE
    assert apps[RISK_APP].route_prefix is None  # reached through handles only


def test_serve_config_names_the_deployments_and_gives_them_no_cpu():
    expected = {API_APP: API_DEPLOYMENT, WS_APP: WS_DEPLOYMENT, RISK_APP: RISK_DEPLOYMENT}
    for app in _config().applications:
        (deployment,) = app.deployments
        assert deployment.name == expected[app.name]
        assert deployment.ray_actor_options.num_cpus == 0


def test_serve_config_slots_match_the_settings_defaults():
    defaults = Settings()
    by_name = {app.name: app.deployments[0] for app in _config().applications}
    assert by_name[API_APP].num_replicas == defaults.api_num_replicas
    assert by_name[API_APP].max_ongoing_requests == defaults.api_max_ongoing_requests
    assert by_name[WS_APP].num_replicas == defaults.ws_num_replicas
    assert by_name[WS_APP].max_ongoing_requests == defaults.ws_max_ongoing_requests
    assert by_name[RISK_APP].num_replicas == defaults.ml_num_replicas


def test_serve_config_import_paths_are_callable_builders():
    for app in _config().applications:
        module, _, name = app.import_path.partition(":")
        assert callable(getattr(importlib.import_module(module), name)), app.import_path


def test_relative_paths_are_resolved_before_settings_reach_ray(tmp_path):
    settings = absolute_paths(Settings(models_dir="models", data_dir=".autoins"), tmp_path)
    assert settings.models_dir == tmp_path.resolve() / "models"
    assert settings.data_dir == tmp_path.resolve() / ".autoins"
    assert settings.migrations_dir.is_absolute()
