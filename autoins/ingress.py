"""Is our HTTP ingress really ours and answering? Checked before `autoins serve` says "ready".

An unclean stop can leave HAProxy (its own process group) holding the HTTP port and HAProxy's fixed ports:
the next start then deploys "successfully" while every request answers 500 (RAY_NOTES.md). So: before
starting a local Serve, name whoever listens on our ports; after deploying, ask `/health/live` through the
ingress and fail with the listener's name instead of printing addresses that do not work.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import httpx
import psutil

# HAProxy re-sends a request to another replica when the first one died under it (connection refused, or closed
# without an answer): a SIGKILLed replica then costs its callers nothing. Ray's default retries only connection
# failures. Everything the API serves may be asked twice: the reads are pure, and ingest is idempotent by event id.
HAPROXY_RETRY_ON = "conn-failure empty-response response-timeout"
HAPROXY_RETRIES = "2"
HAPROXY_METRICS_PORT_DEFAULT = 9101  # Ray 2.60's defaults, overridable by these variables
HAPROXY_STATS_PORT_DEFAULT = 8404


@dataclass(frozen=True, slots=True)
class Listener:
    port: int
    pid: int | None
    name: str
    cmdline: str

    def describe(self) -> str:
        who = f"pid {self.pid} ({self.name})" if self.pid else "a process this user cannot see"
        return f"port {self.port} is taken by {who}: {self.cmdline[:160]}"


def ingress_environment(haproxy: bool) -> dict[str, str]:
    """Environment for the processes of a Ray node that will run Serve: the HAProxy ingress (PERF_NOTES: p95
    2.8 ms vs 9 ms through the Python proxy) with the retry policy above. Read when Serve starts, so it must be in
    the node's environment (`ray start`, cluster.yaml) or this process's before Ray starts here."""
    if not haproxy:
        return {}
    return {"RAY_SERVE_ENABLE_HA_PROXY": "1", "RAY_SERVE_HAPROXY_RETRY_ON": HAPROXY_RETRY_ON,
            "RAY_SERVE_HAPROXY_RETRIES": HAPROXY_RETRIES}


def ingress_ports(http_port: int, haproxy: bool, environ: dict[str, str] | None = None) -> list[int]:
    """The ports our ingress will bind: the HTTP port, and HAProxy's metrics and stats ports when it is on."""
    env = os.environ if environ is None else environ
    ports = [http_port]
    if haproxy:
        ports.append(int(env.get("RAY_SERVE_HAPROXY_METRICS_PORT", HAPROXY_METRICS_PORT_DEFAULT)))
        ports.append(int(env.get("RAY_SERVE_HAPROXY_STATS_PORT", HAPROXY_STATS_PORT_DEFAULT)))
    return ports


def listeners(ports: list[int]) -> list[Listener]:
    """Who listens on any of `ports` (TCP, any address) on this machine."""
    found = []
    wanted = set(ports)
    for conn in psutil.net_connections(kind="tcp"):
        if conn.status != psutil.CONN_LISTEN or not conn.laddr or conn.laddr.port not in wanted:
            continue
        name, cmdline = "?", ""
        if conn.pid:
            try:
                process = psutil.Process(conn.pid)
                name, cmdline = process.name(), " ".join(process.cmdline())
            except psutil.Error:
                pass
        found.append(Listener(conn.laddr.port, conn.pid, name, cmdline))
    return sorted(set(found), key=lambda item: (item.port, item.pid or 0))


def wait_until_answering(base_url: str, timeout_s: float = 30.0) -> str | None:
    """None once `GET /health/live` answers 200 through the ingress; else what it answered last."""
    deadline = time.monotonic() + timeout_s
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            response = httpx.get(f"{base_url}/health/live", timeout=2.0)
            if response.status_code == 200:
                return None
            last = f"HTTP {response.status_code} {response.text[:120]!r}"
        except httpx.HTTPError as error:
            last = f"{type(error).__name__}: {error}"[:200]
        time.sleep(0.5)
    return last
