"""storage/redis/keys.py is the one home of every Redis name (STYLE.md habit 14): the builders spell the
documented scheme (docs/PROJECTIONS.md), every script is assembled from its Lua fragments, and no other module
spells a key prefix. (The Lua twins are run against Redis in tests/integration/test_projections.py.)"""

from __future__ import annotations

import ast
import hashlib
from pathlib import Path

import pytest

import storage.redis.cache as cache
import storage.redis.projections as projections
import storage.redis.score_projection as score_projection
from storage.redis import keys

ROOT = Path(__file__).resolve().parents[2]
SOURCE_PACKAGES = ("storage", "deployments", "actors", "autoins", "usecases", "config", "domain")
KEYS_MODULE = ROOT / "storage" / "redis" / "keys.py"
# Every prefix the system has used, the deleted `driver:{id}:live|latest_trip|score` included: a new copy of
# any of them outside keys.py is a second home.
PREFIX_LITERALS = ("ws:recent:", "ws:driver:", "ws:fleet", "cache:gen:", "cache:v1", "cache:invalidate", "login:fail:",
                   "login:pair:", "driver:", "device:")  # fmt: skip


def test_the_builders_spell_the_documented_names():
    assert (keys.recent_key("d1"), keys.driver_channel("d1"), keys.generation_key("d1")) == (
        "ws:recent:d1", "ws:driver:d1", "cache:gen:d1")  # fmt: skip
    assert (keys.FLEET_CHANNEL, keys.INVALIDATE_CHANNEL) == ("ws:fleet", "cache:invalidate")
    assert keys.l2_key("driver0001", 7, "trips:1:20") == "cache:v1:driver0001:7:trips:1:20"
    assert keys.driver_keys("d1") == ("ws:recent:d1", "cache:gen:d1")


def test_a_devices_cache_scope_cannot_be_a_driver_id():
    device_id = "0b5e6a52-5f25-4d0c-9d6e-7a8bc2d0a111"
    assert keys.device_scope(device_id) == f"device:{device_id}"
    assert keys.generation_key(keys.device_scope(device_id)) == f"cache:gen:device:{device_id}"
    assert ":" in keys.device_scope(device_id)  # a driver id never has one (domain.validation.DRIVER_ID_PATTERN)


def test_the_login_throttle_keys_one_pair_of_client_and_username_case_insensitively():
    assert keys.login_pair_keys("10.0.0.1", "Driver0001") == (
        "login:pair:10.0.0.1:driver0001", "login:pair:10.0.0.1:driver0001:inflight")  # fmt: skip
    assert keys.login_pair_keys("10.0.0.1", "DRIVER0001") == keys.login_pair_keys("10.0.0.1", "driver0001")
    # nothing is shared per username alone (a stranger cannot hold the victim's address) nor per address alone
    assert keys.login_pair_keys("10.0.0.2", "driver0001")[0] != keys.login_pair_keys("10.0.0.1", "driver0001")[0]
    assert keys.login_pair_keys("10.0.0.1", "driver0002")[0] != keys.login_pair_keys("10.0.0.1", "driver0001")[0]


def test_the_lua_key_functions_are_built_from_the_python_prefixes():
    for prefix in (keys.RECENT_PREFIX, keys.DRIVER_CHANNEL_PREFIX, keys.GENERATION_PREFIX, keys.L2_PREFIX + ":"):
        assert f"'{prefix}'" in keys.LUA_KEYS
    with pytest.raises(ValueError, match="Lua string"):
        keys._lua_string("it's")


def test_every_script_is_assembled_from_the_shared_fragments_and_its_sha_is_of_the_final_text():
    shared = keys.LUA_KEYS + keys.LUA_APPEND_RECENT
    assert projections._BATCH_SCRIPT.startswith(shared)
    assert score_projection.write_plan is projections.write_plan  # scores go through the batch script
    assert cache._READ_SCRIPT.startswith(keys.LUA_KEYS)
    assert hashlib.sha1(projections._BATCH_SCRIPT.encode()).hexdigest() == projections._BATCH_SCRIPT_SHA


def _string_literals(tree: ast.AST) -> list[ast.Constant]:
    """Every str constant (f-string parts included) except docstrings, which document names."""
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
        and node.body and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)
    }  # fmt: skip
    strings = [node for node in ast.walk(tree) if isinstance(node, ast.Constant) and isinstance(node.value, str)]
    return [node for node in strings if id(node) not in docstrings]


def test_no_module_but_keys_spells_a_redis_key_prefix():
    found = []
    for package in SOURCE_PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if path == KEYS_MODULE:
                continue
            for node in _string_literals(ast.parse(path.read_text(encoding="utf-8"))):
                found += [f"{path.relative_to(ROOT)}:{node.lineno} {p!r}" for p in PREFIX_LITERALS if p in node.value]
    assert found == []


def test_the_walk_would_catch_a_prefix_in_code_or_lua():
    source = (
        '"""docs may say ws:recent:{id}"""\n'
        'KEY = f"driver:{x}:live"\n'
        'LUA = "redis.call(\'INCR\', \'cache:gen:\' .. id)"\n'
    )
    tree = ast.parse(source)
    assert sorted(p for node in _string_literals(tree) for p in PREFIX_LITERALS if p in node.value) == [
        "cache:gen:", "driver:"]  # fmt: skip
