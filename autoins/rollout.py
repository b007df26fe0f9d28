"""`autoins rollout api|model --to VERSION`: a staged rollout with automatic rollback (docs/OPERATIONS.md).

Why two apps behind weighted routing, not Serve's `target_capacity`: `target_capacity` scales every app of one
Serve config together, and one Serve instance routes a route prefix to one app, so within one cluster it cannot
hold an old and a new build side by side and judge the new one; it is the tool for moving between two clusters
behind a load balancer. Here the new build runs as its own app (`api-canary` on the internal route /_canary;
`risk-canary` with no route), its metrics carry its own `application` label, and the stable side sends it a
sticky share of clients (deployments/api/canary.py; for the model, deployments/risk_model.py by driver).

A build is a source tree (`--source`, default: this checkout) that Ray packages as the canary's runtime_env
`working_dir`: the canary's replicas import that code; the Python environment stays the one installed on the nodes.
For the model, VERSION is an artifact version in MODELS_DIR, and promotion switches the stable replicas in place.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.markup import escape
from rich.table import Table

from autoins.cli_support import console, settings_from_env, user_errors
from autoins.errors import UserFacingError
from config.endpoints import api_base_url
from config.names import API_APP, API_CANARY_APP, RISK_APP, RISK_CANARY_APP
from config.settings import PROJECT_ROOT, Settings
from deployments.api.canary import CANARY_ROUTE, FORWARD_TOKEN_HEADER, forward_token
from domain.rollout import TARGETS, SplitError, Triggers, parse_steps
from storage.prometheus.canary_health import API_QUERIES, MODEL_QUERIES, PrometheusCanaryHealth
from storage.redis.client import create_redis
from storage.redis.traffic_split import RedisTrafficSplits
from usecases.ports.rollout import DeployFailed
from usecases.rollout import Outcome, Rollout, RolloutPlan, RolloutReport

# What a build's working_dir leaves out: environments, data, tests and docs are not code a replica imports.
BUILD_EXCLUDES = [".venv", ".git", ".autoins", "tests", "docs", "**/__pycache__", "*.pyc", ".ci", "scripts",
                  "node_modules", "BENCHMARKS.md"]
DEPLOY_TIMEOUT_S = 300.0
CANARY_CHECK_S = 20.0


class AsyncioWaiter:
    def monotonic_s(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


def plan_from(settings: Settings, *, steps: str | None = None, soak_s: float | None = None,
              keep_old_s: float | None = None) -> RolloutPlan:
    return RolloutPlan(
        steps=parse_steps(steps or settings.rollout_steps),
        soak_s=settings.rollout_soak_s if soak_s is None else soak_s,
        check_interval_s=settings.rollout_check_interval_s,
        window_s=settings.rollout_window_s,
        keep_old_s=settings.rollout_keep_old_s if keep_old_s is None else keep_old_s,
        drain_s=2 * settings.rollout_split_check_s + 0.5,
        triggers=Triggers(max_error_rate=settings.rollout_max_error_rate,
                          max_p95_s=settings.rollout_max_p95_ms / 1000, min_requests=settings.rollout_min_requests),
    )


# -- the API's two sides on Serve ----------------------------------------------------------------


def canary_settings(settings: Settings, version: str) -> Settings:
    """The canary's settings: its role and name, its build label, and one more trusted X-Forwarded-For hop (the
    stable side's forwarder appends the client's address; only forwarded requests reach the canary)."""
    return settings.with_overrides(rollout_role="canary", rollout_app_name=API_CANARY_APP, build_version=version,
                                   trusted_proxy_hops=settings.trusted_proxy_hops + 1)


class ServeApiSides:
    canary_app = API_CANARY_APP

    def __init__(self, settings: Settings, source: Path | None, deploy_timeout_s: float = DEPLOY_TIMEOUT_S) -> None:
        self._settings = settings
        self._source = source
        self._deploy_timeout_s = deploy_timeout_s
        self._version = ""

    async def deploy_canary(self, version: str) -> None:
        self._version = version
        await asyncio.to_thread(self._deploy, canary_settings(self._settings, version), API_CANARY_APP, CANARY_ROUTE)

    async def check_canary(self) -> None:
        """/health/live through the ingress, as a forwarded request: 200 from a replica of the new build."""
        url = api_base_url(self._settings) + CANARY_ROUTE + "/health/live"
        headers = {FORWARD_TOKEN_HEADER.decode(): forward_token(self._settings, API_CANARY_APP)}
        deadline, last = time.monotonic() + CANARY_CHECK_S, "no answer"
        async with httpx.AsyncClient(timeout=5) as client:
            while time.monotonic() < deadline:
                try:
                    answer = await client.get(url, headers=headers)
                    if answer.status_code == 200 and answer.json().get("build") == self._version:
                        return
                    last = f"{answer.status_code} {answer.text[:160]}"
                except (httpx.HTTPError, ValueError) as error:
                    last = f"{type(error).__name__}: {error}"
                await asyncio.sleep(0.5)
        raise DeployFailed(f"{API_CANARY_APP} does not answer through the ingress at {url}: {last}")

    async def promote(self, version: str) -> None:
        promoted = self._settings.with_overrides(build_version=version)
        await asyncio.to_thread(self._deploy, promoted, API_APP, "/")

    async def remove_canary(self) -> None:
        await asyncio.to_thread(_delete_app, API_CANARY_APP)

    def _deploy(self, settings: Settings, app_name: str, route_prefix: str) -> None:
        import ray

        options: dict[str, Any] = {"num_cpus": 0, "max_retries": 0}
        try:
            if self._source is not None:
                options["runtime_env"] = {"working_dir": package_build(self._source)}
            ray.get(ray.remote(_deploy_task()).options(**options).remote(
                settings.portable_values(), app_name, route_prefix), timeout=self._deploy_timeout_s)
        except Exception as error:  # Ray wraps the build's failure (an import error, replicas that never start)
            text = str(error).strip().splitlines()
            raise DeployFailed(f"{app_name} could not be deployed: {type(error).__name__}: "
                               f"{(text[-1] if text else '')[:300]}") from None


def _deploy_task() -> Any:
    """The function the deploy task runs, made here so Ray pickles it by value: the task imports none of our
    modules before its build's working_dir comes first on sys.path (as deployments/builder.py's gateway does)."""

    def deploy(settings_values: dict[str, Any], app_name: str, route_prefix: str) -> str:
        import os
        import sys

        import ray

        if ray.get_runtime_context().runtime_env.get("working_dir") and sys.path[0] != os.getcwd():
            sys.path.insert(0, os.getcwd())
        from deployments.builder import deploy_api_build

        return deploy_api_build(settings_values, app_name, route_prefix)

    return deploy


def package_build(source: Path) -> str:
    """Zip the build's source into Ray's GCS and return its gcs:// URI (content-addressed: the same tree uploads
    once). Ray uploads a local working_dir by itself only for a whole job (`ray.init(runtime_env=…)`); a task's
    runtime_env needs the URI, which is what Ray's job-level upload produces with this same function."""
    import tempfile

    from ray._private.runtime_env.working_dir import upload_working_dir_if_needed

    with tempfile.TemporaryDirectory(prefix="autoins-build-") as scratch:
        packaged = upload_working_dir_if_needed({"working_dir": str(source), "excludes": BUILD_EXCLUDES},
                                                include_gitignore=True, scratch_dir=scratch)
    return str(packaged["working_dir"])


def _delete_app(name: str) -> None:
    from ray import serve

    if name in serve.status().applications:
        serve.delete(name, _blocking=True)


# -- the model's two sides ------------------------------------------------------------------------


class ServeModelSides:
    """The canary is a second RiskModel app loading VERSION; the stable `risk` replicas send it the split's share
    of drivers (their `user_config` carries the split: Serve reconfigures live replicas, no restart); promotion
    switches the stable replicas to VERSION in place."""

    canary_app = RISK_CANARY_APP

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._version = ""

    async def deploy_canary(self, version: str) -> None:
        self._version = version
        canary = self._settings.with_overrides(model_version=version, rollout_role="canary",
                                               rollout_app_name=RISK_CANARY_APP)
        await asyncio.to_thread(_deploy_model, canary, RISK_CANARY_APP, None)

    async def check_canary(self) -> None:
        from ray import serve

        from config.names import RISK_DEPLOYMENT

        handle = await asyncio.to_thread(serve.get_deployment_handle, RISK_DEPLOYMENT, RISK_CANARY_APP)
        info = await asyncio.wait_for(handle.model_info.remote(), CANARY_CHECK_S)
        if not info.get("ready") or info.get("model_version") != self._version:
            raise DeployFailed(f"{RISK_CANARY_APP} serves no model {self._version}: {info.get('error') or info}")

    async def promote(self, version: str) -> None:
        await asyncio.to_thread(_deploy_model, self._settings, RISK_APP, {"model_version": version})

    async def remove_canary(self) -> None:
        await asyncio.to_thread(_delete_app, RISK_CANARY_APP)


def _deploy_model(settings: Settings, app_name: str, user_config: dict | None) -> None:
    from ray import serve

    from deployments.builder import absolute_paths
    from deployments.risk_model import build_risk_app

    try:
        serve.run(build_risk_app(absolute_paths(settings), user_config=user_config), name=app_name,
                  route_prefix=None)
    except Exception as error:
        raise DeployFailed(f"{app_name} could not be deployed: {type(error).__name__}: {str(error)[:300]}") from None


# -- the command ----------------------------------------------------------------------------------


def sides_for(target: str, settings: Settings, source: Path | None) -> Any:
    return ServeApiSides(settings, source) if target == "api" else ServeModelSides(settings)


async def run_rollout(settings: Settings, target: str, version: str, sides: Any, plan: RolloutPlan,
                      on_event: Any = lambda _text: None) -> RolloutReport:
    if not settings.prometheus_url:
        raise UserFacingError("PROMETHEUS_URL is not set: the rollout judges the new side from Prometheus "
                              "(`autoins stack up` starts one and writes its URL to .autoins/stack.env)")
    redis = create_redis(settings)
    try:
        health = PrometheusCanaryHealth(settings.prometheus_url, API_QUERIES if target == "api" else MODEL_QUERIES)
        rollout = Rollout(target, sides, RedisTrafficSplits(redis), health, AsyncioWaiter(), plan, on_event)
        return await rollout.run(version)
    finally:
        await redis.aclose()


async def abort_rollout(settings: Settings, target: str, sides: Any) -> None:
    redis = create_redis(settings)
    try:
        health = PrometheusCanaryHealth(settings.prometheus_url or "", API_QUERIES)  # not asked when aborting
        await Rollout(target, sides, RedisTrafficSplits(redis), health, AsyncioWaiter(), plan_from(settings)).abort()
    finally:
        await redis.aclose()


def report_table(report: RolloutReport) -> Table:
    table = Table(title=escape(f"rollout of {report.target} to {report.version}: {report.outcome} "
                               f"after {report.seconds:.1f} s — {report.reason}"))
    for column in ("at s", "share %", "requests", "5xx %", "p95 ms", "verdict"):
        table.add_column(column, justify="right" if column != "verdict" else "left")
    for check in report.checks:
        health = check.health
        table.add_row(f"{check.at_s:.1f}", str(check.percent), f"{health.requests:.0f}",
                      "—" if health.error_rate is None else f"{health.error_rate * 100:.1f}",
                      "—" if health.p95_s is None else f"{health.p95_s * 1000:.0f}", str(check.verdict))
    return table


def report_json(report: RolloutReport) -> dict[str, Any]:
    return {"target": report.target, "version": report.version, "outcome": str(report.outcome),
            "reason": report.reason, "reached_percent": report.reached_percent, "seconds": round(report.seconds, 1),
            "checks": [{"at_s": round(c.at_s, 1), "percent": c.percent, "requests": c.health.requests,
                        "error_rate": c.health.error_rate, "p95_s": c.health.p95_s, "verdict": str(c.verdict),
                        "reason": c.reason} for c in report.checks]}


@user_errors
def rollout_command(
    target: Annotated[str, typer.Argument(help="api (the API build) or model (a model version in MODELS_DIR)")],
    to: Annotated[str | None, typer.Option("--to", help="the new version: a build label, or a model version")] = None,
    source: Annotated[Path | None, typer.Option(help="api: the new build's source tree (default: this checkout)",
                                                exists=True, file_okay=False)] = None,
    steps: Annotated[str | None, typer.Option(help="shares of clients, e.g. 10,50,100 (ROLLOUT_STEPS)")] = None,
    soak_s: Annotated[float | None, typer.Option(help="seconds per step (ROLLOUT_SOAK_S)")] = None,
    keep_old_s: Annotated[float | None, typer.Option(help="seconds the old side stays at 100 % (ROLLOUT_KEEP_OLD_S)")
                          ] = None,
    abort: Annotated[bool, typer.Option("--abort", help="send every client back to the old side, remove the canary")
                     ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print the report as JSON")] = False,
) -> None:
    """Shift clients to the new side in steps, judge it from Prometheus, roll back on its own (exit 1)."""
    from autoins.serve import join_system

    if target not in TARGETS:
        raise UserFacingError(f"unknown target {target!r}: expected one of {', '.join(TARGETS)}")
    settings = settings_from_env()
    if not abort and not to:
        raise UserFacingError("--to VERSION is required (or --abort)")
    try:
        plan = plan_from(settings, steps=steps, soak_s=soak_s, keep_old_s=keep_old_s)
    except SplitError as error:
        raise UserFacingError(str(error)) from None
    join_system(settings, start=False)
    stable = API_APP if target == "api" else RISK_APP
    from autoins.serve import serve_apps

    if serve_apps().get(stable) != "RUNNING":
        raise UserFacingError(f"the {stable!r} app is not running: deploy the system first (`autoins deploy`)")
    sides = sides_for(target, settings, (source or PROJECT_ROOT).resolve() if target == "api" else None)
    if abort:
        asyncio.run(abort_rollout(settings, target, sides))
        console.print(f"rollout of {target} aborted: every client is on {stable}")
        return
    assert to is not None
    report = asyncio.run(run_rollout(settings, target, to, sides, plan,
                                     on_event=lambda text: console.print(f"{time.strftime('%H:%M:%S')} {text}",
                                                                         highlight=False, markup=False)))
    console.print_json(json.dumps(report_json(report))) if as_json else console.print(report_table(report))
    raise typer.Exit(0 if report.outcome is Outcome.PROMOTED else 1)
