"""`autoins serve` as an operator runs it: a process of its own that starts Ray, consumes, serves the API
(health and a demo login answer on the configured port), and stops cleanly on Ctrl-C (SIGINT) with exit 0
after finishing what is in flight."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid

import httpx
import pytest
from websockets.exceptions import InvalidHandshake, InvalidStatus
from websockets.sync.client import connect

from autoins.pipeline import durable_messages
from autoins.ray_head import head_processes
from autoins.seed import seed_demo
from autoins.stack import free_tcp_port
from config.settings import load_settings
from deployments.ws_protocol import client_subprotocols
from tests.integration.pipeline_support import drop, key_of, make_migrated_database, produce
from tests.integration.test_pipeline import NOW

pytestmark = pytest.mark.timeout(300)


def test_serve_consumes_serves_the_api_and_stops_cleanly_on_sigint(base_settings, kafka_topics, fleet, tmp_path):
    payloads, _ = fleet
    payloads = payloads[:3_000]
    url = asyncio.run(make_migrated_database(base_settings, NOW))
    group = f"serve-{uuid.uuid4().hex[:8]}"
    settings = base_settings.with_overrides(database_url=url, kafka_consumer_group=group, **kafka_topics)
    asyncio.run(seed_demo(settings, 1))  # driver0001 / password0001
    http_port = free_tcp_port()
    env = _serve_env(url, http_port, kafka_topics, group, "serve-test")
    produce(settings, payloads, [key_of(p) for p in payloads])
    proc = subprocess.Popen(
        [sys.executable, "-m", "autoins.cli", "serve"],
        env=env,
        cwd=tmp_path,  # no .env / stack.env there: the environment above is the whole configuration
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)  # keeps the pipe drained
    reader.start()
    try:
        deadline = time.monotonic() + 180
        while asyncio.run(durable_messages(settings)) < len(payloads):
            assert proc.poll() is None, "".join(lines)
            assert time.monotonic() < deadline, "serve did not consume the readings"
            time.sleep(0.5)
        api = f"http://127.0.0.1:{http_port}"
        while True:  # the apps are deployed after the pipeline started
            assert proc.poll() is None, "".join(lines)
            assert time.monotonic() < deadline, "serve did not answer /health/live"
            try:
                if httpx.get(f"{api}/health/live", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        login = httpx.post(f"{api}/api/v1/auth/login", json={"username": "driver0001", "password": "password0001"},
                           timeout=10)
        assert login.status_code == 200, login.text
        me = httpx.get(f"{api}/api/v1/drivers/me", headers={"Authorization": f"Bearer {login.json()['access_token']}"},
                       timeout=10)
        assert me.status_code == 200 and me.json()["driver_id"] == "driver0001", me.text
        ws_url = f"ws://127.0.0.1:{http_port}/ws/drivers/driver0001"
        subprotocols = client_subprotocols(login.json()["access_token"])
        while True:  # the WebSocket app is deployed last: once it says hello, serve is fully up
            assert proc.poll() is None, "".join(lines)
            assert time.monotonic() < deadline, "serve did not answer on the WebSocket"
            try:
                with connect(ws_url, open_timeout=5, subprotocols=subprotocols) as ws:
                    assert json.loads(ws.recv(timeout=5))["type"] == "hello"
                break
            except (OSError, InvalidHandshake, InvalidStatus):
                time.sleep(0.5)
        while not any("Ctrl-C stops" in line for line in lines):  # every app deployed, addresses printed
            assert proc.poll() is None and time.monotonic() < deadline, "".join(lines)
            time.sleep(0.2)
        assert any(f"http://127.0.0.1:{http_port}/docs" in line for line in lines), "".join(lines)
        started_head = head_of(tmp_path)
        assert started_head is not None and head_processes(started_head)
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=90)
        reader.join(timeout=10)
        output = "".join(lines)
        assert proc.returncode == 0, output
        assert "stopping the pipeline" in output
        assert "stopped the local Ray head" in output
        assert head_of(tmp_path) is None and head_processes(started_head) == [], "Ctrl-C stops what serve started"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        _kill_head(tmp_path)
        drop(url)


def test_serve_names_a_process_holding_its_port_and_exits_non_zero(base_settings, tmp_path):
    """A stale ingress (here: any listener) on the HTTP port must stop the start with its name, before Ray."""
    import socket

    url = asyncio.run(make_migrated_database(base_settings, NOW))
    try:
        with socket.socket() as squatter:
            squatter.bind(("127.0.0.1", 0))
            squatter.listen()
            port = squatter.getsockname()[1]
            env = _serve_env(url, port)
            done = subprocess.run([sys.executable, "-m", "autoins.cli", "serve"], env=env, cwd=tmp_path,
                                  capture_output=True, text=True, timeout=120)
        assert done.returncode == 1, done.stdout + done.stderr
        assert f"port {port} is taken by pid {os.getpid()}" in done.stderr.replace("\n", ""), done.stderr
    finally:
        drop(url)


def head_of(cwd):
    """The local Ray head a CLI started in `cwd` recorded (its data dir is `cwd/.autoins`)."""
    from autoins.ray_head import RayHead, state_path

    path = state_path(load_settings(cwd, environ={}, data_dir=cwd / ".autoins"))
    return RayHead(**json.loads(path.read_text())) if path.is_file() else None


def _cli(args, env, cwd, timeout_s=180):
    return subprocess.run([sys.executable, "-m", "autoins.cli", *args], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=timeout_s)


def test_the_system_outlives_a_sigkilled_cli_and_status_and_stop_work_from_another_terminal(
    base_settings, kafka_topics, fleet, tmp_path
):
    payloads, _ = fleet
    first, second = payloads[:1_500], payloads[1_500:3_000]
    url = asyncio.run(make_migrated_database(base_settings, NOW))
    group = f"orphan-{uuid.uuid4().hex[:8]}"
    settings = base_settings.with_overrides(database_url=url, kafka_consumer_group=group, **kafka_topics)
    http_port = free_tcp_port()
    env = _serve_env(url, http_port, kafka_topics, group, "orphan")
    produce(settings, first, [key_of(p) for p in first])
    proc = subprocess.Popen([sys.executable, "-m", "autoins.cli", "serve"], env=env, cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True).start()
    head = None
    try:
        deadline = time.monotonic() + 240
        while not any("Ctrl-C stops" in line for line in lines):
            assert proc.poll() is None and time.monotonic() < deadline, "".join(lines)
            time.sleep(0.2)
        head = head_of(tmp_path)
        proc.kill()  # SIGKILL: no cleanup of any kind
        proc.wait(timeout=30)
        api = f"http://127.0.0.1:{http_port}"
        assert httpx.get(f"{api}/health/live", timeout=5).status_code == 200
        produce(settings, second, [key_of(p) for p in second])
        deadline = time.monotonic() + 90
        while (durable := asyncio.run(durable_messages(settings))) < len(first) + len(second):
            if time.monotonic() > deadline:
                seen = _cli(["status"], env, tmp_path)
                raise AssertionError(f"the pipeline stopped with the CLI: {durable} durable; {seen.stdout}"
                                     f"{seen.stderr}")
            time.sleep(0.5)
        status = _cli(["status"], env, tmp_path)
        assert status.returncode == 0, status.stdout + status.stderr
        assert "pipeline ok" in status.stdout and "consumer-0" in status.stdout, status.stdout
        assert status.stdout.count("RUNNING") == 3, status.stdout
        stop = _cli(["stop"], env, tmp_path)
        assert stop.returncode == 0, stop.stdout + stop.stderr
        assert head_processes(head) == []
        again = _cli(["status"], env, tmp_path)
        assert again.returncode == 1 and "nothing is running" in again.stderr.replace("\n", " "), again.stderr
    finally:
        if proc.poll() is None:
            proc.kill()
        _kill_head(tmp_path, head)
        drop(url)


def test_on_a_joined_cluster_stop_removes_our_system_and_leaves_the_cluster_running(
    base_settings, kafka_topics, fleet, tmp_path
):
    """RAY_ADDRESS set: `autoins deploy` joins a cluster it did not start. `autoins stop` from another process
    removes the pipeline, the apps and Serve's ingress (the HTTP port is free again) and leaves every process of
    the cluster running; `autoins status` then says nothing of ours runs there."""
    from autoins.ingress import ingress_environment
    from autoins.ray_head import start_head, stop_head, wait_for_head
    from autoins.stack.processes import port_listening

    payloads, _ = fleet
    first = payloads[:1_000]
    url = asyncio.run(make_migrated_database(base_settings, NOW))
    group = f"joined-{uuid.uuid4().hex[:8]}"
    settings = base_settings.with_overrides(database_url=url, kafka_consumer_group=group, **kafka_topics)
    http_port = free_tcp_port()
    env = _serve_env(url, http_port, kafka_topics, group, "joined") | {"RAY_AUTH_MODE": "disabled"}
    owner_dir, cli_dir = tmp_path / "cluster-owner", tmp_path / "operator"
    owner_dir.mkdir(), cli_dir.mkdir()
    owner = load_settings(owner_dir, environ={}, data_dir=owner_dir / ".autoins")
    head = start_head(owner, env | ingress_environment(base_settings.serve_haproxy))  # someone else's cluster
    try:
        wait_for_head(head)
        env["RAY_ADDRESS"] = head.address
        cluster_processes = {p.pid for p in head_processes(head)  # its GCS and raylet (workers come and go)
                             if any(core in " ".join(p.cmdline()) for core in ("gcs_server", "raylet"))}
        assert len(cluster_processes) >= 2
        produce(settings, first, [key_of(p) for p in first])
        deploy = _cli(["deploy"], env, cli_dir, timeout_s=240)
        assert deploy.returncode == 0, deploy.stdout + deploy.stderr
        assert httpx.get(f"http://127.0.0.1:{http_port}/health/live", timeout=5).status_code == 200
        deadline = time.monotonic() + 90
        while asyncio.run(durable_messages(settings)) < len(first):
            assert time.monotonic() < deadline, "the joined pipeline did not consume"
            time.sleep(0.5)
        status = _cli(["status"], env, cli_dir)
        assert status.returncode == 0 and "pipeline ok" in status.stdout, status.stdout + status.stderr

        stop = _cli(["stop"], env, cli_dir)
        assert stop.returncode == 0, stop.stdout + stop.stderr
        assert "stopped the local Ray head" not in stop.stdout  # not ours to stop
        assert cluster_processes <= {p.pid for p in head_processes(head) if p.is_running()}, "the cluster was hurt"
        assert port_listening("127.0.0.1", head.port)
        deadline = time.monotonic() + 30
        while port_listening("127.0.0.1", http_port):  # Serve's ingress is gone with Serve
            assert time.monotonic() < deadline, f"something still listens on {http_port} after stop"
            time.sleep(0.5)
        again = _cli(["status"], env, cli_dir)
        assert again.returncode == 1 and "no pipeline is running" in again.stderr.replace("\n", " "), again.stderr
    finally:
        stop_head(owner, head)
        drop(url)


def _kill_head(cwd, head=None) -> None:
    """A failed test must not leave a cluster (and its ingress) behind for the next one."""
    head = head or head_of(cwd)
    for process in head_processes(head) if head else ():
        process.kill()


def _serve_env(url: str, http_port: int, kafka_topics: dict | None = None, group: str | None = None,
               namespace: str = "serve-test") -> dict[str, str]:
    """The whole configuration of an `autoins` process under test: its database, topics, a small pipeline, its
    own HTTP port and HAProxy listener ports (never the ones this test session's Ray holds), no RAY_ADDRESS."""
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env |= {
        "DATABASE_URL": url, "HTTP_PORT": str(http_port), "API_NUM_REPLICAS": "1", "NUM_SHARDS": "1",
        "NUM_PERSISTENCE": "1", "RAY_NAMESPACE": f"{namespace}-{uuid.uuid4().hex[:6]}",
        "RAY_SERVE_HAPROXY_METRICS_PORT": str(free_tcp_port()), "RAY_SERVE_HAPROXY_STATS_PORT": str(free_tcp_port()),
    }
    if kafka_topics is not None:
        env |= {"KAFKA_BOOTSTRAP_SERVERS": kafka_topics["kafka_bootstrap_servers"],
                "KAFKA_TOPIC_EVENTS": kafka_topics["kafka_topic_events"],
                "KAFKA_TOPIC_DLQ": kafka_topics["kafka_topic_dlq"]}
    if group is not None:
        env["KAFKA_CONSUMER_GROUP"] = group
    return env
