"""The pure parts of `autoins bench chaos`: the fault plan, when a fault counts as over, what the API probe
counts, how a difference is shown, and the report's shape."""

from __future__ import annotations

import threading
import time

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from autoins.bench.chaos import _around_difference
from autoins.bench.chaos_faults import FAULT_KINDS, Fault, plan_faults
from autoins.bench.chaos_probe import ApiProber
from autoins.bench.chaos_report import HEAD, json_line, section_markdown


@given(kinds=st.lists(st.sampled_from(FAULT_KINDS), min_size=1, unique=True), kills=st.integers(0, 30),
       seed=st.integers(0, 2**32))
def test_a_random_plan_draws_every_kind_once_before_any_twice(kinds, kills, seed):
    plan = plan_faults(kinds, kills, seed, explicit=False)
    assert len(plan) == kills
    for start in range(0, kills, len(kinds)):
        round_ = plan[start : start + len(kinds)]
        assert len(set(round_)) == len(round_) and set(round_) <= set(kinds)
    assert plan == plan_faults(kinds, kills, seed, explicit=False), "the seed fixes the plan"


def test_an_explicit_plan_is_the_list_in_order_and_unknown_kinds_are_refused():
    assert plan_faults(["api", "shard", "api"], 0, 1, explicit=True) == ["api", "shard", "api"]
    with pytest.raises(ValueError, match=r"unknown fault kind.*raylet"):
        plan_faults(["shard", "raylet"], 2, 1, explicit=False)


def test_a_fault_is_over_when_ingest_resumed_and_the_role_is_back():
    fault = Fault("shard", "shard-0", 42)
    assert fault.recovered_s is None
    fault.back_s = 1.5
    assert fault.recovered_s is None, "ingest has not resumed yet"
    fault.resumed_s = 3.0
    assert fault.recovered_s == 3.0
    drained = Fault("api", "replica", 7, back_s=2.0, drained=True)
    assert drained.recovered_s == 2.0, "with nothing left to ingest, the role being back is enough"
    assert drained.as_dict()["recovered_s"] == 2.0


def test_the_probe_counts_a_failure_only_when_the_retry_fails_too():
    calls: dict[str, int] = {}
    lock = threading.Lock()

    def answer(request: httpx.Request) -> httpx.Response:
        with lock:
            n = calls[request.url.path] = calls.get(request.url.path, 0) + 1
        if request.url.path == "/health/live":
            return httpx.Response(200)
        if request.url.path == "/api/v1/drivers/me":  # every first try fails, every retry answers
            if n % 2:
                raise httpx.RemoteProtocolError("Server disconnected without sending a response.")
            return httpx.Response(200)
        if request.url.path == "/api/v1/risk/me/score":
            return httpx.Response(404)  # an answer: no score yet
        return httpx.Response(503)  # the trips route is down

    prober = ApiProber("http://api.test", "token", clients=1, every_s=0.0, transport=httpx.MockTransport(answer))
    started = time.monotonic()
    prober.start()
    while prober.sent < 40:
        time.sleep(0.01)
    prober.stop()
    summary = prober.summary()
    routes = {key.rsplit(" ", 1)[0] for key in summary["failures"]}
    assert routes == {"/api/v1/drivers/me/trips?limit=5"}
    assert set(summary["first_try_failures"]) == {"/api/v1/drivers/me RemoteProtocolError"}
    assert summary["failed_first_try"] > summary["failed"] > 0
    after_retry, first_try = prober.failed_between(started, time.monotonic())
    assert (after_retry, first_try) == (summary["failed"], summary["failed_first_try"])


def test_a_difference_is_shown_where_the_twin_row_differs():
    faulty = '(abc,risk:driver1,2,premium_quoted,"{""policy_id"": ""1111""}")'
    clean = '(abc,risk:driver1,2,premium_quoted,"{""policy_id"": ""2222""}")'
    shown = _around_difference(faulty, [clean], context=20)
    assert shown.startswith("(abc … ") and "1111" in shown and "2222" not in shown
    assert _around_difference(faulty, ["(zzz,other)"]) == faulty, "no twin: the row itself"


def _result(**changes) -> dict:
    fault = Fault("shard", "chaos-shard-0", 11, new_pid=12, at_s=3.0, resumed_s=1.2, back_s=1.4, failed_requests=0,
                  failed_first_try=1)
    result = {
        "events": 1000, "lost": 0, "duplicated": 0, "trips_equal": True, "scores_equal": True,
        "domain_events_equal": True, "faults": [fault.as_dict()], "recovery_s_max": 1.4, "resumed_s_max": 1.2,
        "api_requests": 100, "api_failed": 0, "api_failed_first_try": 1, "api_failures": {},
        "api_first_try_failures": {"/health/live RemoteProtocolError": 1},
        "compared": {"trips": {"faulty_rows": 3, "clean_rows": 3, "equal": True}}, "rewinds": 1, "dead_lettered": 0,
        "faulty_elapsed_s": 10.0, "clean_elapsed_s": 5.0, "rate": 500.0, "drivers": 10, "node_loss": False,
        "shape": {"kafka_num_consumers": 2, "num_shards": 2, "num_persistence": 2, "api_num_replicas": 2,
                  "consumer_batch_size": 2000},
        "machine": {"nproc": 2, "cpu_model": "x", "memory_gib": 1, "python": "3.11", "ray": "2.60",
                    "postgres": "PostgreSQL 15"},
        "date": "2026-12-04 00:00 UTC", "command": "autoins bench chaos", "verified": True,
    }
    return result | changes


def test_the_json_line_leads_with_the_issue_figures_and_the_section_has_every_fault():
    line = json_line(_result())
    assert tuple(line)[: len(HEAD)] == HEAD
    section = section_markdown(_result())
    assert section.startswith("<!-- bench:chaos begin -->") and section.endswith("<!-- bench:chaos end -->")
    assert "| shard | `chaos-shard-0` | 3.0 | 1.2 | 1.4 | 0 | 1 |" in section
    assert "/health/live RemoteProtocolError: 1" in section
