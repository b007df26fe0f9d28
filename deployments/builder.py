"""Serve applications of the system and how they are deployed (DESIGN.md §5, RAY_NOTES "Serve").

- `api`  (route "/"):   `ApiGateway`, FastAPI ingress over `create_app(settings)`: REST, health, /metrics, ingest.
- `ws`   (route "/ws"): `LiveGateway`, the WebSocket feeds; its own deployment because every open socket holds
  a `max_ongoing_requests` slot for its lifetime, so sockets can never starve the API's HTTP slots.
- `risk` (no route):    `RiskModel` (deployments.risk_model.build_risk_app), reached through named handles.
Every replica takes `num_cpus=0` (a replica with the default 1 CPU waits forever on a 2-CPU node).
`deploy_all` is what `autoins serve`/`demo` run; `*_builder` are the import paths of `serve_config.yaml`
(`serve run serve_config.yaml`), which read settings from the environment at that entrypoint.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ray import serve
from ray.serve import Application

from config.endpoints import api_base_url, http_host_port
from config.names import API_APP, API_DEPLOYMENT, RISK_APP, WS_APP, WS_DEPLOYMENT
from config.settings import PROJECT_ROOT, Settings, load_settings

API_ROUTE, WS_ROUTE = "/", "/ws"
_PATH_FIELDS = ("models_dir", "data_dir", "archive_dir", "migrations_dir")


def absolute_paths(settings: Settings, root: Path | None = None) -> Settings:
    """Settings whose relative paths are resolved against `root` (default: the working directory), so
    replicas (whose working directory is Ray's) find the same files."""
    base = (root or Path.cwd()).resolve()
    changes = {name: (base / getattr(settings, name)).resolve() for name in _PATH_FIELDS
               if not getattr(settings, name).is_absolute()}
    return settings.with_overrides(**changes) if changes else settings


def _api_gateway() -> type:
    """The API's ingress class. Defined in a function so Ray pickles it by value: a replica unpickles it without
    importing any of our modules, then makes its own build (a rollout's runtime_env `working_dir`) come first on
    sys.path — Ray puts the deploying driver's directory first, which would load the old code — and only then
    imports the app. Its FastAPI app is built in the replica from plain settings values (Settings.portable_values);
    lifespan runs once per replica."""

    @serve.ingress()
    class ApiGateway:
        def __init__(self, settings_values: dict[str, Any]) -> None:
            import os
            import sys

            import ray

            if ray.get_runtime_context().runtime_env.get("working_dir") and sys.path[0] != os.getcwd():
                sys.path.insert(0, os.getcwd())
            self._settings_values = settings_values

        def __serve_build_asgi_app__(self) -> Any:
            from config.settings import Settings
            from deployments.api.app import create_app

            return create_app(Settings.model_validate(self._settings_values))

    return ApiGateway


def build_api_app(settings: Settings) -> Application:
    """The `ApiGateway` deployment (Settings ignores fields it does not know, so another build reads these)."""
    deployment = serve.deployment(
        _api_gateway(), name=API_DEPLOYMENT, ray_actor_options={"num_cpus": 0}, num_replicas=settings.api_num_replicas,
        max_ongoing_requests=settings.api_max_ongoing_requests, logging_config={"enable_access_log": False})
    return deployment.bind(settings.portable_values())


def deploy_api_build(settings_values: dict[str, Any], app_name: str, route_prefix: str) -> str:
    """Deploy the API app from the code of the process that runs this: `autoins rollout` runs it in a Ray task with
    the new build as its runtime_env (working_dir), which Serve then gives the app's replicas. Blocks until RUNNING
    (Serve raises if the build's replicas cannot start). Returns the build's version label."""
    settings = Settings.model_validate(settings_values)
    serve.run(build_api_app(settings), name=app_name, route_prefix=route_prefix)
    return settings.build_version


def build_ws_app(settings: Settings) -> Application:
    """The `LiveGateway` deployment: WebSockets only, sized for sockets (`ws_max_ongoing_requests`)."""
    from deployments.websocket import create_ws_app

    return _ingress(WS_DEPLOYMENT, create_ws_app(settings), settings.ws_num_replicas, settings.ws_max_ongoing_requests)


def _ingress(name: str, app: Any, num_replicas: int, max_ongoing_requests: int) -> Application:
    # Serve's own access log is off: our middleware writes one line per request carrying the request id,
    # and a second line per request costs replica CPU for nothing.
    @serve.deployment(name=name, ray_actor_options={"num_cpus": 0}, num_replicas=num_replicas,
                      max_ongoing_requests=max_ongoing_requests, logging_config={"enable_access_log": False})
    @serve.ingress(app)
    class Gateway:
        pass

    return Gateway.bind()


def build_risk(settings: Settings) -> Application:
    from deployments.risk_model import build_risk_app

    return build_risk_app(settings)


def deploy_all(settings: Settings, *, risk: bool = True) -> dict[str, str]:
    """Start Serve on settings.http_host:http_port (Ray must be initialised) and deploy risk, api and ws by
    their names; blocks until every app is RUNNING. Returns the URLs to print."""
    settings = absolute_paths(settings)
    serve.start(http_options={"host": settings.http_host, "port": settings.http_port})
    if risk:  # first: the API's readiness and its score prior ask the model
        serve.run(build_risk(settings), name=RISK_APP, route_prefix=None)
    serve.run(build_api_app(settings), name=API_APP, route_prefix=API_ROUTE)
    serve.run(build_ws_app(settings), name=WS_APP, route_prefix=WS_ROUTE)
    return urls(settings)


def urls(settings: Settings) -> dict[str, str]:
    base = api_base_url(settings)
    return {
        "console": f"{base}/",  # the web console (docs/CONSOLE.md), served by the API deployment
        "api": base,
        "docs": f"{base}/docs",
        "websocket": f"ws://{http_host_port(settings)}{WS_ROUTE}/drivers/<driver_id>",
        "metrics": f"{base}/metrics",
    }


def delete_all(timeout_s: float = 90.0) -> None:
    """Remove the three apps (what `deploy_all` created) together; Serve itself keeps running. Each replica
    stays reachable for its draining period (30 s by default, so load balancers can deregister it)."""
    import time

    names = (WS_APP, API_APP, RISK_APP)
    for name in names:
        serve.delete(name, _blocking=False)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and set(names) & set(serve.status().applications):
        time.sleep(0.5)


# -- application builders for serve_config.yaml (`import_path: deployments.builder:api_builder`) ------


def _settings_from_environment(args: dict[str, Any]) -> Settings:
    from config.logging import configure_logging

    root = Path(args.get("root") or PROJECT_ROOT)
    settings = absolute_paths(load_settings(root), root)
    configure_logging(settings.log_level, json=settings.log_json)
    return settings


def api_builder(args: dict[str, Any]) -> Application:
    return build_api_app(_settings_from_environment(args))


def ws_builder(args: dict[str, Any]) -> Application:
    return build_ws_app(_settings_from_environment(args))


def risk_builder(args: dict[str, Any]) -> Application:
    return build_risk(_settings_from_environment(args))
