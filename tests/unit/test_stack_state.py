"""stack.json (what the stack started) and stack.env (the URLs in use): formats and writers."""

from __future__ import annotations

from pathlib import Path

from autoins.stack.endpoints import Service
from autoins.stack.state import (
    ManagedProcess,
    ServiceRecord,
    StackState,
    load_state,
    parse_stack_env,
    render_stack_env,
    save_state,
    state_from_json,
    state_to_json,
    write_stack_env,
)
from config.settings import load_settings


def _record(service: Service = Service.REDIS, pid: int = 4242) -> ServiceRecord:
    process = ManagedProcess(pid, 1_700_000_000.25, "redis-server", ("/usr/bin/redis-server", "--port", "6390"),
                             "/tmp/x/redis/redis.log")
    return ServiceRecord(service, "redis://127.0.0.1:6390/0", "127.0.0.1", 6390, "/tmp/x/redis", process,
                         "2026-01-01T00:00:00+00:00", "dev (pid 1, autoins stack up)")


def test_state_round_trips_through_json():
    state = StackState().with_record(_record()).with_record(_record(Service.KAFKA, 99))
    assert state_from_json(state_to_json(state)) == state


def test_unknown_fields_and_services_are_skipped_so_down_still_works():
    text = state_to_json(StackState().with_record(_record())).replace(
        '"services": {', '"services": {"memcached": {"pid": 1}, ', 1
    ).replace('"started_by"', '"added_later": 1, "started_by"', 1)
    assert set(state_from_json(text).services) == {Service.REDIS}


def test_a_corrupt_or_missing_state_file_is_an_empty_state(tmp_path: Path):
    assert load_state(tmp_path) == StackState()
    (tmp_path / "stack.json").write_text("{not json")
    assert load_state(tmp_path) == StackState()


def test_saving_an_empty_state_removes_the_file(tmp_path: Path):
    save_state(tmp_path, StackState().with_record(_record()))
    assert load_state(tmp_path).services[Service.REDIS].process.pid == 4242
    save_state(tmp_path, StackState().with_record(_record()).without(Service.REDIS))
    assert not (tmp_path / "stack.json").exists()


def test_stack_env_lists_the_three_urls_in_a_fixed_order():
    text = render_stack_env({
        Service.KAFKA: "127.0.0.1:19092",
        Service.POSTGRES: "postgresql://postgres@127.0.0.1:6543/autoins",
        Service.REDIS: "redis://127.0.0.1:6390/0",
    })
    keys = [line.split("=", 1)[0] for line in text.splitlines() if not line.startswith("#")]
    assert keys == ["DATABASE_URL", "REDIS_URL", "KAFKA_BOOTSTRAP_SERVERS"]
    assert parse_stack_env(text)["DATABASE_URL"] == "postgresql://postgres@127.0.0.1:6543/autoins"


def test_writing_the_same_urls_twice_changes_nothing(tmp_path: Path):
    urls = {Service.REDIS: "redis://127.0.0.1:6390/0"}
    assert write_stack_env(tmp_path, urls) is True
    assert write_stack_env(tmp_path, urls) is False
    assert write_stack_env(tmp_path, {Service.REDIS: "redis://127.0.0.1:6391/0"}) is True


def test_load_settings_reads_the_stack_env_written_by_up(tmp_path: Path):
    write_stack_env(tmp_path / ".autoins", {
        Service.POSTGRES: "postgresql://postgres@127.0.0.1:6543/autoins",
        Service.REDIS: "redis://127.0.0.1:6390/0",
        Service.KAFKA: "127.0.0.1:19092",
    })
    settings = load_settings(tmp_path, environ={})
    assert (settings.database_url, settings.redis_url, settings.kafka_bootstrap_servers) == (
        "postgresql://postgres@127.0.0.1:6543/autoins", "redis://127.0.0.1:6390/0", "127.0.0.1:19092",
    )
