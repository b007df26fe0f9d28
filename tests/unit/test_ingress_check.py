"""Naming who holds our ingress ports (autoins/ingress.py); the socket opened here is a listen, not a connect."""

from __future__ import annotations

import os
import socket

from autoins.ingress import ingress_ports, listeners


def test_haproxy_adds_its_metrics_and_stats_ports_from_the_environment():
    assert ingress_ports(8000, haproxy=False, environ={}) == [8000]
    assert ingress_ports(8000, haproxy=True, environ={}) == [8000, 9101, 8404]
    env = {"RAY_SERVE_HAPROXY_METRICS_PORT": "19101", "RAY_SERVE_HAPROXY_STATS_PORT": "18404"}
    assert ingress_ports(8000, haproxy=True, environ=env) == [8000, 19101, 18404]


def test_a_listening_port_is_named_with_its_process():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        found = listeners([port])
    assert [(f.port, f.pid) for f in found] == [(port, os.getpid())]
    assert f"port {port} is taken by pid {os.getpid()}" in found[0].describe()


def test_a_free_port_has_no_listener():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    assert listeners([port]) == []
