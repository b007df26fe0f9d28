"""What `stack up` started (`<data_dir>/stack.json`) and the URLs in use (`<data_dir>/stack.env`).

`stack.json` is the only way `down` knows what is ours: a record holds the pid *and* its create
time and process name, so a recycled pid is never signalled. `stack.env` is read by
`load_settings` (KEY=value lines). Rendering and parsing are pure; the writers are atomic
(write a sibling, then rename) so a crash never leaves half a file.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from autoins.stack.endpoints import Service
from autoins.stack.errors import StackBusy

STATE_FILE = "stack.json"
ENV_FILE = "stack.env"
LOCK_FILE = "stack.lock"
STATE_VERSION = 1

ENV_KEYS = {
    Service.POSTGRES: "DATABASE_URL",
    Service.REDIS: "REDIS_URL",
    Service.KAFKA: "KAFKA_BOOTSTRAP_SERVERS",
    Service.PROMETHEUS: "PROMETHEUS_URL",
    Service.ALERTMANAGER: "ALERTMANAGER_URL",
}


@dataclass(frozen=True)
class ManagedProcess:
    """A server process we launched. `create_time` (psutil, seconds since the epoch) and `name`
    identify it beyond its pid; `stop_argv` (run as `run_as`) replaces SIGTERM when set
    (PostgreSQL: `pg_ctl stop -m fast`)."""

    pid: int
    create_time: float
    name: str
    argv: tuple[str, ...]
    log_path: str
    stop_argv: tuple[str, ...] = ()
    run_as: str | None = None
    stop_signal: int = 15  # SIGTERM; PostgreSQL records SIGINT ("fast" shutdown)


@dataclass(frozen=True)
class ServiceRecord:
    """One server `stack up` started, with where and how, and who started it."""

    service: Service
    url: str
    host: str
    port: int
    data_dir: str
    process: ManagedProcess
    started_at: str
    started_by: str


@dataclass(frozen=True)
class StackState:
    services: dict[Service, ServiceRecord] = field(default_factory=dict)

    def with_record(self, record: ServiceRecord) -> StackState:
        return StackState({**self.services, record.service: record})

    def without(self, service: Service) -> StackState:
        return StackState({k: v for k, v in self.services.items() if k is not service})


def state_to_json(state: StackState) -> str:
    services = {}
    for service, record in state.services.items():
        entry = asdict(record)
        entry["service"] = service.value
        services[service.value] = entry
    return json.dumps({"version": STATE_VERSION, "services": services}, indent=2, sort_keys=True) + "\n"


def state_from_json(text: str) -> StackState:
    """Unknown services and fields are skipped, so an older or newer file never blocks `down`."""
    raw = json.loads(text) if text.strip() else {}
    services: dict[Service, ServiceRecord] = {}
    for name, entry in (raw.get("services") or {}).items():
        try:
            service = Service(name)
            process = _known(ManagedProcess, entry["process"])
            process["argv"] = tuple(process.get("argv", ()))
            process["stop_argv"] = tuple(process.get("stop_argv", ()))
            fields = _known(ServiceRecord, entry)
            fields.update(service=service, process=ManagedProcess(**process))
            services[service] = ServiceRecord(**fields)
        except (KeyError, TypeError, ValueError):
            continue
    return StackState(services)


def _known(cls: type, entry: Mapping[str, Any]) -> dict[str, Any]:
    names = cls.__dataclass_fields__  # type: ignore[attr-defined]
    return {k: v for k, v in entry.items() if k in names}


def load_state(data_dir: Path) -> StackState:
    path = data_dir / STATE_FILE
    if not path.is_file():
        return StackState()
    try:
        return state_from_json(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        return StackState()


def save_state(data_dir: Path, state: StackState) -> None:
    """Writes the file, or removes it when nothing of ours is left."""
    path = data_dir / STATE_FILE
    if not state.services:
        path.unlink(missing_ok=True)
        return
    write_atomic(path, state_to_json(state))


def render_stack_env(urls: Mapping[Service, str]) -> str:
    """KEY=value lines in a fixed order; values are URLs (no quoting needed, no newlines)."""
    lines = ["# Written by `autoins stack up`: the URLs in use. `autoins stack down` removes it."]
    lines += [f"{ENV_KEYS[service]}={urls[service]}" for service in ENV_KEYS if service in urls]
    return "\n".join(lines) + "\n"


def parse_stack_env(text: str) -> dict[str, str]:
    pairs = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and not key.lstrip().startswith("#"):
            pairs[key.strip()] = value.strip()
    return pairs


def write_stack_env(data_dir: Path, urls: Mapping[Service, str]) -> bool:
    """True when the file changed (a second `up` with the same URLs writes nothing)."""
    path = data_dir / ENV_FILE
    text = render_stack_env(urls)
    if path.is_file() and path.read_text(encoding="utf-8") == text:
        return False
    write_atomic(path, text)
    return True


def write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


@contextlib.contextmanager
def stack_lock(data_dir: Path, timeout_s: float = 60.0) -> Iterator[None]:
    """One `up`/`down` per data dir at a time: a second one waits (bounded) instead of racing."""
    data_dir.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + timeout_s
    with open(data_dir / LOCK_FILE, "a+") as handle:
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise StackBusy(
                        f"another `autoins stack up/down` has held {data_dir / LOCK_FILE} for "
                        f"{timeout_s:g} s; wait for it or remove a stale lock holder"
                    ) from None
                time.sleep(0.1)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
