"""An embedded Redis in `<data_dir>/redis/`: a cache, so no snapshots and no AOF."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from autoins.stack.endpoints import Service
from autoins.stack.probes import fingerprint
from autoins.stack.processes import spawn, wait_ready
from autoins.stack.state import ManagedProcess

READY_PROBE_TIMEOUT_S = 0.5


def bind_addresses(host: str) -> list[str]:
    """`localhost` binds both loopbacks; a leading `-` lets Redis skip ::1 where IPv6 is off."""
    if host.lower() == "localhost":
        return ["127.0.0.1", "-::1"]
    return [host.strip("[]")]


def start_redis(host: str, port: int, data_dir: Path, binary: Path, timeout_s: float,
                password: str | None = None) -> ManagedProcess:
    """Launch redis-server on host:port and wait until it answers PING (ServerStartFailed if not)."""
    workdir = data_dir / "redis"
    workdir.mkdir(parents=True, exist_ok=True)
    argv = [str(binary), "--port", str(port), "--bind", *bind_addresses(host), "--dir", str(workdir),
            "--save", "", "--appendonly", "no", "--daemonize", "no"]
    if password:
        argv += ["--requirepass", password]
    proc = spawn(argv, workdir / "redis.log", cwd=workdir)
    probe_host = "127.0.0.1" if host.lower() == "localhost" else host.strip("[]")
    wait_ready(proc, lambda: fingerprint(Service.REDIS, probe_host, port, READY_PROBE_TIMEOUT_S).answers,
               timeout_s, f"Redis ({binary}) on {host}:{port}")
    # The record goes to stack.json: never store the password there.
    return dataclasses.replace(proc, argv=tuple("****" if arg == password else arg for arg in proc.argv))
