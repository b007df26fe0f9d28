"""`stack up | status | down` as a library: plain data in and out, no printing (the CLI renders).

`up` parses every URL, probes every service and decides for all three *before* it starts
anything, so a refusal (bad URL, foreign port, remote server down, missing binary) leaves the
machine untouched. If a start fails after an earlier one succeeded, the servers this same call
started are stopped again. Each started server is written to stack.json as soon as it answers,
so even a killed `up` leaves `down` a record.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

from autoins.stack import binaries, monitoring
from autoins.stack.binaries import BinaryOverrides
from autoins.stack.endpoints import MONITORING_ORDER, SERVICE_ORDER, Endpoint, Service, endpoints
from autoins.stack.errors import ServerStartFailed, ServiceRefused, StackError, one_line
from autoins.stack.kafka_broker import start_tansu
from autoins.stack.pg_server import start_postgres
from autoins.stack.plan import Action, Decision, decide
from autoins.stack.probes import PROBE_TIMEOUT_S, Probe, ProbeState, probe, run_coroutine
from autoins.stack.processes import STOP_TIMEOUT_S, current_user, is_ours, stop_process
from autoins.stack.redis_server import start_redis
from autoins.stack.state import (
    ENV_FILE,
    STATE_FILE,
    ServiceRecord,
    StackState,
    load_state,
    save_state,
    stack_lock,
    write_stack_env,
)
from config.settings import Settings

# Until Settings has `stack_start_timeout_s`: initdb + first start of PostgreSQL is the slow path.
STACK_START_TIMEOUT_S = 60.0


class Owner(StrEnum):
    STACK = "stack"  # started by `autoins stack up`, recorded in stack.json
    EXTERNAL = "external"  # answering, started by someone else: never stopped by us
    NONE = "-"  # nothing answers and nothing of ours runs


@dataclass(frozen=True)
class StackOptions:
    """What the entrypoint adds to Settings: binary overrides, time limits, who is asking."""

    binaries: BinaryOverrides = field(default_factory=BinaryOverrides)
    start_timeout_s: float = STACK_START_TIMEOUT_S
    probe_timeout_s: float = PROBE_TIMEOUT_S
    stop_timeout_s: float = STOP_TIMEOUT_S
    started_by: str = "autoins.stack.stack_up"


@dataclass(frozen=True)
class ServiceOutcome:
    """What `up` did for one service: `action` is started / already running / reusing."""

    service: Service
    url: str
    action: str
    owner: Owner
    pid: int | None = None
    detail: str = ""


@dataclass(frozen=True)
class StackReport:
    services: tuple[ServiceOutcome, ...]
    data_dir: Path
    env_file: Path
    env_changed: bool
    elapsed_s: float

    @property
    def started(self) -> list[Service]:
        return [o.service for o in self.services if o.action == "started"]


@dataclass(frozen=True)
class ServiceStatus:
    service: Service
    url: str
    owner: Owner
    pid: int | None
    answers: bool
    detail: str = ""
    required: bool = True  # False for optional services not running (Prometheus not installed): no failure


@dataclass(frozen=True)
class ServiceStop:
    """What `down` did for one service: stopped / was not running / left alone (external)."""

    service: Service
    url: str
    pid: int | None
    result: str


def stack_data_dir(settings: Settings) -> Path:
    """`settings.data_dir` made absolute (relative paths are relative to the working directory,
    as for `load_settings`, which reads `.autoins/stack.env` from there)."""
    return settings.data_dir.expanduser().resolve()


def stack_up(settings: Settings, options: StackOptions | None = None) -> StackReport:
    """Make PostgreSQL, Redis and Kafka answer at the configured URLs; idempotent."""
    options = options or StackOptions()
    began = time.monotonic()
    data_dir = stack_data_dir(settings)
    configured = endpoints(settings)  # BadServiceUrl before anything else
    with stack_lock(data_dir):
        state = _forget_dead(data_dir, load_state(data_dir))
        seen = {s: probe(configured[s], options.probe_timeout_s) for s in SERVICE_ORDER}
        decisions = {s: decide(configured[s], seen[s], _ours(state, configured[s]) is not None) for s in SERVICE_ORDER}
        for decision in decisions.values():
            decision.raise_if_refused()
        executables = _executables(decisions, options.binaries, data_dir)  # BinaryNotFound, still untouched
        started: list[ServiceRecord] = []
        outcomes: list[ServiceOutcome] = []
        try:
            for service in SERVICE_ORDER:
                outcome, record = _bring_up(configured[service], decisions[service], state, executables,
                                            data_dir, options)
                if record is not None:
                    started.append(record)
                    state = state.with_record(record)
                    save_state(data_dir, state)
                outcomes.append(outcome)
            monitored, state = _monitoring_up(settings, state, data_dir, started)
            outcomes += monitored
        except BaseException:
            for record in reversed(started):
                try:
                    stop_process(record.process, options.stop_timeout_s)
                except StackError:
                    continue  # keep its record: `down` can try again
                state = state.without(record.service)
            save_state(data_dir, state)
            raise
        urls = {s: configured[s].url for s in SERVICE_ORDER}
        urls.update({o.service: o.url for o in outcomes if o.service in MONITORING_ORDER and o.url})
        env_changed = write_stack_env(data_dir, urls)
    return StackReport(tuple(outcomes), data_dir, data_dir / ENV_FILE, env_changed, time.monotonic() - began)


def stack_status(settings: Settings, options: StackOptions | None = None) -> list[ServiceStatus]:
    """Each configured service: who runs it, our pid, and whether it answers. Read-only."""
    options = options or StackOptions()
    configured = endpoints(settings)
    state = load_state(stack_data_dir(settings))
    rows = []
    for service in SERVICE_ORDER:
        endpoint = configured[service]
        seen = probe(endpoint, options.probe_timeout_s)
        record = _ours(state, endpoint)
        owner = Owner.STACK if record else Owner.EXTERNAL if seen.state in _SERVER_ANSWERS else Owner.NONE
        rows.append(ServiceStatus(service, endpoint.url, owner, record.process.pid if record else None,
                                  seen.answers, _status_detail(endpoint, seen, state)))
    return rows + [_monitoring_status(service, state) for service in MONITORING_ORDER]


def stack_down(settings: Settings, options: StackOptions | None = None) -> list[ServiceStop]:
    """Stop what `up` started (verified by pid + create time + name), newest first; leave the rest."""
    options = options or StackOptions()
    data_dir = stack_data_dir(settings)
    urls = {Service.POSTGRES: settings.database_url, Service.REDIS: settings.redis_url,
            Service.KAFKA: settings.kafka_bootstrap_servers, Service.PROMETHEUS: "", Service.ALERTMANAGER: ""}
    results: list[ServiceStop] = []
    with stack_lock(data_dir):
        state = load_state(data_dir)
        for service in (*reversed(SERVICE_ORDER), *reversed(MONITORING_ORDER)):
            record = state.services.get(service)
            if record is None:
                results.append(ServiceStop(service, urls[service], None, "left alone (not started by the stack)"))
                continue
            stopped = stop_process(record.process, options.stop_timeout_s)  # ServerStopFailed keeps the record
            results.append(ServiceStop(service, record.url, record.process.pid,
                                       "stopped" if stopped else "was not running"))
            state = state.without(service)
            save_state(data_dir, state)
        (data_dir / ENV_FILE).unlink(missing_ok=True)
    return results[::-1]


# -- Prometheus and Alertmanager (optional) --------------------------------------------------------

NOT_INSTALLED = "not installed (apt-get install prometheus prometheus-alertmanager); the stack runs without"


def _monitoring_up(settings: Settings, state: StackState, data_dir: Path,
                   started: list[ServiceRecord]) -> tuple[list[ServiceOutcome], StackState]:
    """Both running as ours: reuse. Otherwise (re)start both (their configs name each other's ports); without the
    binaries, one "not installed" row each and nothing fails."""
    ours = {s: state.services.get(s) for s in MONITORING_ORDER}
    if all(r is not None and is_ours(r.process) for r in ours.values()):
        return [ServiceOutcome(s, r.url, "already running", Owner.STACK, r.process.pid) for s, r in ours.items()
                if r is not None], state
    if not monitoring.installed():
        return [ServiceOutcome(s, "", "not installed", Owner.NONE, None, NOT_INSTALLED)
                for s in MONITORING_ORDER], state
    for record in ours.values():
        if record is not None:
            stop_process(record.process)
            state = state.without(record.service)
    run = monitoring.start_monitoring(settings, data_dir)
    when = datetime.now(UTC).isoformat(timespec="seconds")
    who = f"{current_user()} (pid {os.getpid()}, autoins stack up)"
    outcomes = []
    for service, proc, url, port in ((Service.ALERTMANAGER, run.alertmanager, run.alertmanager_url,
                                      run.alertmanager_port),
                                     (Service.PROMETHEUS, run.prometheus, run.prometheus_url, run.prometheus_port)):
        record = ServiceRecord(service, url, "127.0.0.1", port, str(data_dir / service.value), proc, when, who)
        started.append(record)
        state = state.with_record(record)
        save_state(data_dir, state)
        outcomes.append(ServiceOutcome(service, url, "started", Owner.STACK, proc.pid))
    return outcomes, state


def _monitoring_status(service: Service, state: StackState) -> ServiceStatus:
    record = state.services.get(service)
    if record is None:
        detail = "not running (`autoins stack up` starts it)" if monitoring.installed() else NOT_INSTALLED
        return ServiceStatus(service, "", Owner.NONE, None, False, detail, required=False)
    alive = is_ours(record.process)
    answers = alive and monitoring.http_ready(f"{record.url}/-/ready")
    detail = "" if answers else ("does not answer /-/ready" if alive else f"pid {record.process.pid} has exited")
    return ServiceStatus(service, record.url, Owner.STACK, record.process.pid, answers, detail)


# -- helpers ---------------------------------------------------------------------------------------

_SERVER_ANSWERS = (ProbeState.READY, ProbeState.NO_DATABASE, ProbeState.REFUSED)


def _ours(state: StackState, endpoint: Endpoint) -> ServiceRecord | None:
    """Our live record for this endpoint (same port), or None."""
    record = state.services.get(endpoint.service)
    if record is None or record.port != endpoint.port or not is_ours(record.process):
        return None
    return record


def _forget_dead(data_dir: Path, state: StackState) -> StackState:
    alive = StackState({s: r for s, r in state.services.items() if is_ours(r.process)})
    if alive != state:
        save_state(data_dir, alive)
    return alive


def _executables(decisions: dict[Service, Decision], overrides: BinaryOverrides, data_dir: Path) -> dict[Service, Path]:
    wanted = {s for s, d in decisions.items() if d.action is Action.START}
    found: dict[Service, Path] = {}
    if Service.POSTGRES in wanted:
        found[Service.POSTGRES] = binaries.postgres_bin_dir(overrides.postgres_bin_dir)
        binaries.postgres_major_version(found[Service.POSTGRES])  # a broken install fails here, early
    if Service.REDIS in wanted:
        found[Service.REDIS] = binaries.redis_server(overrides.redis_server, data_dir)
    if Service.KAFKA in wanted:
        found[Service.KAFKA] = binaries.tansu(overrides.tansu, data_dir)
    return found


def _bring_up(endpoint: Endpoint, decision: Decision, state: StackState, executables: dict[Service, Path],
              data_dir: Path, options: StackOptions) -> tuple[ServiceOutcome, ServiceRecord | None]:
    service = endpoint.service
    if decision.action is Action.START:
        record, detail = _start(endpoint, executables[service], data_dir, options)
        return ServiceOutcome(service, endpoint.url, "started", Owner.STACK, record.process.pid, detail), record
    ours = _ours(state, endpoint)
    detail = ""
    if decision.action is Action.WAIT:
        detail = _answering_with_database(endpoint, ours, options)
    elif decision.action is Action.CREATE_DATABASE:
        detail = _create_database(endpoint, options)
    if ours is not None:
        return ServiceOutcome(service, endpoint.url, "already running", Owner.STACK, ours.process.pid, detail), None
    return ServiceOutcome(service, endpoint.url, "reusing", Owner.EXTERNAL, None, detail), None


def _start(endpoint: Endpoint, executable: Path, data_dir: Path,
           options: StackOptions) -> tuple[ServiceRecord, str]:
    timeout_s = options.start_timeout_s
    if endpoint.service is Service.POSTGRES:
        proc = start_postgres(endpoint.host, endpoint.port, endpoint.user or "postgres", data_dir, executable,
                              timeout_s)
        workdir = Path(proc.log_path).parent
    elif endpoint.service is Service.REDIS:
        proc = start_redis(endpoint.host, endpoint.port, data_dir, executable, timeout_s, endpoint.password)
        workdir = data_dir / "redis"
    else:
        proc = start_tansu(endpoint.port, data_dir, endpoint.host, executable, timeout_s)
        workdir = data_dir / "kafka"
    record = ServiceRecord(
        endpoint.service, endpoint.url, endpoint.host, endpoint.port, str(workdir), proc,
        started_at=datetime.now(UTC).isoformat(timespec="seconds"),
        started_by=f"{current_user()} (pid {os.getpid()}, {options.started_by})",
    )
    try:
        return record, _answering_with_database(endpoint, record, options)
    except BaseException:
        stop_process(proc, options.stop_timeout_s)
        raise


def _answering_with_database(endpoint: Endpoint, record: ServiceRecord | None, options: StackOptions) -> str:
    """Wait until the full client probe passes; a missing PostgreSQL database is then created."""
    deadline = time.monotonic() + options.start_timeout_s
    while True:
        seen = probe(endpoint, options.probe_timeout_s)
        if seen.state is ProbeState.READY:
            return ""
        if seen.state is ProbeState.NO_DATABASE:
            return _create_database(endpoint, options)
        if time.monotonic() >= deadline:
            pid = f" (pid {record.process.pid}, log {record.process.log_path})" if record else ""
            raise ServerStartFailed(
                f"{endpoint.service.setting} {endpoint.url}: the stack's {endpoint.service.label}{pid} "
                f"does not answer within {options.start_timeout_s:g} s: {seen.detail}"
            )
        time.sleep(0.2)


def _create_database(endpoint: Endpoint, options: StackOptions) -> str:
    from storage.postgres.pool import create_database_if_missing

    try:
        created = run_coroutine(create_database_if_missing(endpoint.url, timeout_s=options.probe_timeout_s * 5))
    except Exception as error:  # asyncpg errors: a role without CREATEDB, a server going away
        raise ServiceRefused(
            f"DATABASE_URL {endpoint.url}: cannot create database {endpoint.database!r}: "
            f"{one_line(str(error) or type(error).__name__)}"
        ) from None
    return f"created database {endpoint.database}" if created else ""


def _status_detail(endpoint: Endpoint, seen: Probe, state: StackState) -> str:
    if seen.state is ProbeState.NO_DATABASE:
        return f"database {endpoint.database!r} does not exist (`autoins stack up` creates it)"
    record = state.services.get(endpoint.service)
    if record is None or _ours(state, endpoint) is not None:
        return seen.detail
    if record.port != endpoint.port and is_ours(record.process):
        extra = f"the stack also runs one on port {record.port} (pid {record.process.pid})"
    else:
        extra = f"the stack's server (pid {record.process.pid}) has exited"
    return f"{seen.detail}; {extra}" if seen.detail else extra


__all__ = [
    "STATE_FILE", "Owner", "ServiceOutcome", "ServiceStatus", "ServiceStop", "StackOptions", "StackReport",
    "stack_data_dir", "stack_down", "stack_status", "stack_up",
]
