"""The reuse / start / wait / refuse decision of `autoins stack up`, one service at a time."""

from __future__ import annotations

import pytest

from autoins.stack.endpoints import parse_kafka_bootstrap, parse_postgres_url, parse_redis_url
from autoins.stack.errors import PortTaken, RemoteServiceDown, ServiceRefused
from autoins.stack.plan import Action, decide
from autoins.stack.probes import Probe, ProbeState

LOCAL_REDIS = parse_redis_url("redis://127.0.0.1:6390/0")
REMOTE_REDIS = parse_redis_url("redis://cache.internal:6379/0")
LOCAL_PG = parse_postgres_url("postgresql://postgres@127.0.0.1:6543/autoins")


def test_an_answering_service_is_reused_local_or_remote():
    assert decide(LOCAL_REDIS, Probe(ProbeState.READY)).action is Action.REUSE
    assert decide(REMOTE_REDIS, Probe(ProbeState.READY)).action is Action.REUSE


def test_a_missing_database_is_created_not_a_new_server():
    assert decide(LOCAL_PG, Probe(ProbeState.NO_DATABASE)).action is Action.CREATE_DATABASE


def test_a_silent_loopback_port_gets_an_embedded_server():
    decision = decide(LOCAL_REDIS, Probe(ProbeState.CLOSED, "nothing listens on 127.0.0.1:6390"))
    assert decision.action is Action.START and decision.error is None


def test_a_silent_port_whose_server_we_started_is_waited_for_not_started_twice():
    assert decide(LOCAL_REDIS, Probe(ProbeState.CLOSED), ours_alive=True).action is Action.WAIT


def test_a_silent_remote_url_is_an_error_never_a_start():
    decision = decide(REMOTE_REDIS, Probe(ProbeState.CLOSED, "nothing listens on cache.internal:6379"))
    assert decision.action is Action.REFUSE
    assert isinstance(decision.error, RemoteServiceDown)
    assert "REDIS_URL redis://cache.internal:6379/0 does not answer" in str(decision.error)
    with pytest.raises(RemoteServiceDown):
        decision.raise_if_refused()


def test_a_silent_broker_list_is_not_started():
    listed = parse_kafka_bootstrap("127.0.0.1:19092,127.0.0.1:19093")
    assert isinstance(decide(listed, Probe(ProbeState.CLOSED)).error, RemoteServiceDown)


def test_a_foreign_server_on_the_port_is_refused_with_what_it_said():
    decision = decide(LOCAL_REDIS, Probe(ProbeState.FOREIGN, "it answered 'HTTP/1.0 400 Bad request'"))
    assert isinstance(decision.error, PortTaken)
    message = str(decision.error)
    assert "port 6390 on 127.0.0.1 is taken by something that is not Redis" in message
    assert "HTTP/1.0 400" in message and "\n" not in message


def test_a_foreign_server_is_refused_even_if_our_old_record_is_alive():
    assert decide(LOCAL_REDIS, Probe(ProbeState.FOREIGN, "x"), ours_alive=True).action is Action.REFUSE


def test_the_right_server_refusing_us_is_reported_not_replaced():
    decision = decide(LOCAL_PG, Probe(ProbeState.REFUSED, 'role "alice" does not exist'))
    assert isinstance(decision.error, ServiceRefused)
    assert "PostgreSQL answers but refuses us" in str(decision.error)
