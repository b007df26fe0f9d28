"""`autoins stack up | status | down` against real servers, through the CLI.

Each test points the three URLs at free loopback ports and the data dir at a tmp dir, so `up`
starts embedded PostgreSQL, Redis and tansu there; nothing touches the machine's own servers
except the reuse test, which only reads them (and drops the database it made).
"""

from __future__ import annotations

import asyncio
import contextlib
import http.server
import json
import os
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import psutil
import pytest
import redis
from confluent_kafka import Consumer, Producer, TopicPartition
from typer.testing import CliRunner

from autoins.cli import app
from autoins.stack import free_tcp_port, stack_down
from autoins.stack.monitoring import installed as monitoring_installed
from autoins.stack.processes import port_listening, wait_gone
from autoins.stack.state import ManagedProcess, ServiceRecord, StackState, save_state
from config.settings import Settings, load_settings
from storage.kafka.clients import consumer_config, ensure_topics, producer_config
from storage.postgres.pool import drop_database

SYSTEM_POSTGRES = "postgresql://postgres@127.0.0.1:5432"
SYSTEM_REDIS = "redis://127.0.0.1:6379/0"
# Prometheus and Alertmanager join the stack where Debian's packages are installed (autoins/stack/monitoring.py)
MONITORING = {"prometheus", "alertmanager"} if monitoring_installed() else set()


@dataclass(frozen=True)
class Stack:
    root: Path
    env: dict[str, str]

    @property
    def data_dir(self) -> Path:
        return self.root / ".autoins"

    @property
    def ports(self) -> list[int]:
        """The loopback ports of the three URLs (a remote URL contributes none)."""
        urls = (self.env[k] for k in ("DATABASE_URL", "REDIS_URL", "KAFKA_BOOTSTRAP_SERVERS"))
        return [int(url.rsplit(":", 1)[1].split("/")[0]) for url in urls if "127.0.0.1:" in url]

    def state(self) -> dict:
        path = self.data_dir / "stack.json"
        return json.loads(path.read_text())["services"] if path.exists() else {}

    def pids(self) -> list[int]:
        return [entry["process"]["pid"] for entry in self.state().values()]

    def settings(self) -> Settings:
        return load_settings(self.root, environ=self.env)


def _new_stack(tmp_path: Path, **env: str) -> Stack:
    defaults = {
        "DATABASE_URL": f"postgresql://postgres@127.0.0.1:{free_tcp_port()}/autoins_stacktest",
        "REDIS_URL": f"redis://127.0.0.1:{free_tcp_port()}/0",
        "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{free_tcp_port()}",
        "DATA_DIR": str(tmp_path / ".autoins"),
        "LOG_JSON": "false",
        "ENVIRONMENT": "development",
        "COLUMNS": "240",  # Rich tables: no wrapped cells to trip the assertions
        "PROMETHEUS_PORT": str(free_tcp_port()),
        "ALERTMANAGER_PORT": str(free_tcp_port()),
    }
    return Stack(tmp_path, {**defaults, **env})


def _cli(stack: Stack, *args: str, **extra_env: str):
    """Run `autoins stack …` in-process, from the stack's root, with only its environment."""
    with contextlib.chdir(stack.root):
        return CliRunner().invoke(app, ["stack", *args], env={**stack.env, **extra_env})


def _one_line_error(result) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


def _assert_nothing_left(stack: Stack, pids: list[int] = ()) -> None:
    for pid in pids:
        assert wait_gone(pid, 5.0), f"pid {pid} still runs"
    for port in stack.ports:
        assert not port_listening("127.0.0.1", port), f"port {port} still listens"
    root = str(stack.root)
    leftovers = [p.info for p in psutil.process_iter(["pid", "cmdline", "status"])
                 if p.info["status"] != psutil.STATUS_ZOMBIE and any(root in arg for arg in p.info["cmdline"] or ())]
    assert leftovers == []
    assert not (stack.data_dir / "stack.json").exists()


# -- the happy path: one stack for the module ------------------------------------------------------


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    stack = _new_stack(tmp_path_factory.mktemp("stack"))
    result = _cli(stack, "up")
    assert result.exit_code == 0, result.output
    try:
        yield stack
    finally:
        stack_down(stack.settings())  # no-op when the down test already ran


def test_up_starts_all_three_on_the_configured_ports_and_writes_stack_env(running: Stack):
    state = running.state()
    assert set(state) == {"postgres", "redis", "kafka"} | MONITORING
    assert all(entry["started_by"].endswith("autoins stack up)") for entry in state.values())
    assert all(port_listening("127.0.0.1", port) for port in running.ports)
    in_use = load_settings(running.root, environ={})  # only stack.env: what other commands see
    assert in_use.database_url == running.env["DATABASE_URL"]
    assert in_use.redis_url == running.env["REDIS_URL"]
    assert in_use.kafka_bootstrap_servers == running.env["KAFKA_BOOTSTRAP_SERVERS"]


@pytest.mark.skipif(not MONITORING, reason="Prometheus/Alertmanager are not installed (apt-get install prometheus "
                                             "prometheus-alertmanager)")
def test_prometheus_and_alertmanager_answer_with_the_rules_loaded(running: Stack):
    import httpx

    in_use = (running.data_dir / "stack.env").read_text()
    urls = dict(line.split("=", 1) for line in in_use.splitlines() if "=" in line and not line.startswith("#"))
    assert urls["PROMETHEUS_URL"] == f"http://127.0.0.1:{running.env['PROMETHEUS_PORT']}"
    groups = httpx.get(f"{urls['PROMETHEUS_URL']}/api/v1/rules").json()["data"]["groups"]
    assert {r["name"] for g in groups for r in g["rules"]} >= {"KafkaConsumerLagHigh", "HighErrorRate"}
    wanted = [f"{urls['ALERTMANAGER_URL']}/api/v2/alerts"]
    for _ in range(100):  # Prometheus finds its Alertmanager a moment after it answers
        managers = httpx.get(f"{urls['PROMETHEUS_URL']}/api/v1/alertmanagers").json()["data"]["activeAlertmanagers"]
        if [m["url"] for m in managers] == wanted:
            break
        time.sleep(0.1)
    assert [m["url"] for m in managers] == wanted


def test_postgres_stores_and_returns_a_row_and_takes_the_migrations(running: Stack):
    settings = running.settings()

    async def exercise() -> tuple[str, list[str]]:
        conn = await asyncpg.connect(settings.database_url)
        try:
            await conn.execute("CREATE TABLE stack_probe (id int PRIMARY KEY, note text)")
            await conn.execute("INSERT INTO stack_probe VALUES (1, 'hello')")
            note = await conn.fetchval("SELECT note FROM stack_probe WHERE id = 1")
            from storage.postgres.migrations import apply_migrations

            applied = await apply_migrations(conn, settings.migrations_dir)
            return note, applied
        finally:
            await conn.close()

    note, applied = asyncio.run(exercise())
    assert note == "hello"
    assert applied  # a fresh database takes every migration


def test_redis_sets_and_gets(running: Stack):
    client = redis.Redis.from_url(running.env["REDIS_URL"])
    try:
        client.set("stack-probe", b"42")
        assert client.get("stack-probe") == b"42"
    finally:
        client.close()


def test_the_broker_carries_one_message(running: Stack):
    settings = running.settings().with_overrides(kafka_topic_events=f"stack.probe.{secrets.token_hex(3)}",
                                                 kafka_partitions=1)
    ensure_topics(settings)
    producer = Producer(producer_config(settings))
    producer.produce(settings.kafka_topic_events, key=b"driver-1", value=b"hello")
    assert producer.flush(10) == 0
    consumer = Consumer(consumer_config(settings, group_id="stack-probe"))
    try:
        consumer.assign([TopicPartition(settings.kafka_topic_events, 0, 0)])
        message = None
        for _ in range(50):
            message = consumer.poll(0.2)
            if message is not None and message.error() is None:
                break
        assert message is not None and message.value() == b"hello"
    finally:
        consumer.close()


def test_a_second_up_finds_everything_running_and_changes_nothing(running: Stack):
    before = (running.data_dir / "stack.json").read_text(), (running.data_dir / "stack.env").stat().st_mtime_ns
    result = _cli(running, "up")
    assert result.exit_code == 0, result.output
    assert result.stdout.count("already running") == 3 + len(MONITORING)
    assert "Nothing started" in result.stdout
    after = (running.data_dir / "stack.json").read_text(), (running.data_dir / "stack.env").stat().st_mtime_ns
    assert after == before


def test_status_shows_our_pids_and_exits_zero_when_all_answer(running: Stack):
    result = _cli(running, "status")
    assert result.exit_code == 0, result.output
    for pid in running.pids():
        assert str(pid) in result.stdout
    assert result.stdout.count("stack") >= 3 and "no" not in result.stdout.split()


def test_down_stops_everything_it_started_and_leaves_no_process(running: Stack):
    pids = running.pids()
    result = _cli(running, "down")
    assert result.exit_code == 0, result.output
    assert result.stdout.count("stopped") == 3 + len(MONITORING)
    _assert_nothing_left(running, pids)
    assert not (running.data_dir / "stack.env").exists()
    assert _cli(running, "status").exit_code != 0


# -- refusals: one line, non-zero exit, nothing started --------------------------------------------


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *_args: object) -> None:
        pass


@contextlib.contextmanager
def _http_server() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _QuietHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def test_an_http_server_on_the_redis_port_is_refused_before_anything_starts(tmp_path: Path):
    with _http_server() as port:
        stack = _new_stack(tmp_path, REDIS_URL=f"redis://127.0.0.1:{port}/0")
        result = _cli(stack, "up")
        assert result.exit_code == 1
        line = _one_line_error(result)
    assert f"port {port} on 127.0.0.1 is taken by something that is not Redis" in line
    _assert_nothing_left(stack)


@pytest.mark.parametrize(
    ("key", "value", "exit_code", "says"),
    [
        ("DATABASE_URL", "postgresql://postgres@127.0.0.1:99x/autoins", 1, "port '99x' is not a number"),
        ("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:notaport", 1, "port 'notaport' is not a number"),
        ("DATABASE_URL", "mysql://root@127.0.0.1:3306/autoins", 2, "must be a postgresql:// URL"),
    ],
)
def test_a_bad_url_is_one_line_and_starts_nothing(tmp_path: Path, key, value, exit_code, says):
    stack = _new_stack(tmp_path, **{key: value})
    result = _cli(stack, "up")
    assert result.exit_code == exit_code
    assert says in _one_line_error(result)
    assert not (stack.data_dir / "stack.json").exists()


def test_a_silent_remote_url_is_refused(tmp_path: Path):
    stack = _new_stack(tmp_path, REDIS_URL="redis://192.0.2.1:6379/0")  # TEST-NET-1: never routed
    result = _cli(stack, "up")
    assert result.exit_code == 1
    assert "is not a single loopback TCP address" in _one_line_error(result)
    _assert_nothing_left(stack)


def test_a_missing_server_binary_is_refused_before_anything_starts(tmp_path: Path):
    stack = _new_stack(tmp_path)
    result = _cli(stack, "up", AUTOINS_STACK_REDIS_SERVER=str(tmp_path / "no-such-redis-server"))
    assert result.exit_code == 1
    assert "cannot start Redis: AUTOINS_STACK_REDIS_SERVER=" in _one_line_error(result)
    _assert_nothing_left(stack)


def test_a_broker_that_cannot_start_takes_down_what_this_up_started(tmp_path: Path):
    stack = _new_stack(tmp_path)
    result = _cli(stack, "up", AUTOINS_STACK_TANSU_BIN="/bin/false")
    assert result.exit_code == 1
    assert "exited with code 1 before answering" in _one_line_error(result)
    _assert_nothing_left(stack)  # the PostgreSQL and Redis it had started are stopped again


def test_down_never_signals_a_pid_that_is_no_longer_ours(tmp_path: Path):
    stack = _new_stack(tmp_path)
    me = psutil.Process()
    impostor = ManagedProcess(os.getpid(), me.create_time() - 100, me.name(), ("redis-server",), "x.log")
    save_state(stack.data_dir, StackState().with_record(ServiceRecord(
        *_record_fields(stack), process=impostor, started_at="then", started_by="test")))
    stops = stack_down(stack.settings())
    assert [s.result for s in stops if s.pid == os.getpid()] == ["was not running"]
    assert me.is_running()


def _record_fields(stack: Stack) -> tuple:
    from autoins.stack.endpoints import Service

    return (Service.REDIS, stack.env["REDIS_URL"], "127.0.0.1", stack.ports[1], str(stack.data_dir))


# -- reuse of the machine's own servers -----------------------------------------------------------


def test_up_reuses_the_running_postgres_and_redis_and_starts_only_the_broker(tmp_path: Path):
    database = f"autoins_stack_reuse_{secrets.token_hex(3)}"
    stack = _new_stack(tmp_path, DATABASE_URL=f"{SYSTEM_POSTGRES}/{database}", REDIS_URL=SYSTEM_REDIS)
    if not (port_listening("127.0.0.1", 5432) and port_listening("127.0.0.1", 6379)):
        pytest.skip("needs the machine's PostgreSQL on 5432 and Redis on 6379")
    try:
        result = _cli(stack, "up")
        assert result.exit_code == 0, result.output
        assert result.stdout.count("reusing") == 2 and f"created database {database}" in result.stdout
        assert set(stack.state()) == {"kafka"} | MONITORING
        broker_pid = stack.state()["kafka"]["process"]["pid"]
        assert stack.ports == [5432, 6379, stack.ports[2]]
        status = _cli(stack, "status")
        assert status.exit_code == 0 and status.stdout.count("external") == 2
        down = _cli(stack, "down")
        assert down.exit_code == 0, down.output
        assert down.stdout.count("left alone") == 2
        assert wait_gone(broker_pid, 5.0) and not port_listening("127.0.0.1", stack.ports[2])
        assert port_listening("127.0.0.1", 5432) and port_listening("127.0.0.1", 6379)
    finally:
        stack_down(stack.settings())
        asyncio.run(drop_database(f"{SYSTEM_POSTGRES}/{database}"))


# -- the conftest fixtures built on the launcher --------------------------------------------------


def test_kafka_topics_are_created_on_the_private_session_broker(kafka_bootstrap: str, kafka_topics: dict[str, str]):
    from confluent_kafka.admin import AdminClient

    assert kafka_topics["kafka_bootstrap_servers"] == kafka_bootstrap
    topics = AdminClient({"bootstrap.servers": kafka_bootstrap}).list_topics(timeout=5).topics
    assert {kafka_topics["kafka_topic_events"], kafka_topics["kafka_topic_dlq"]} <= set(topics)
    assert len(topics[kafka_topics["kafka_topic_events"]].partitions) == 8
