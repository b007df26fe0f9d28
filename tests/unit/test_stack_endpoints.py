"""URL parsing and the "may we start a server for it" rule of `autoins stack up`."""

from __future__ import annotations

import pytest

from autoins.stack.endpoints import (
    Service,
    endpoints,
    parse_kafka_bootstrap,
    parse_postgres_url,
    parse_redis_url,
)
from autoins.stack.errors import BadServiceUrl
from config.fail_closed import is_loopback
from config.settings import Settings


def test_postgres_url_gives_host_port_user_and_database():
    endpoint = parse_postgres_url("postgresql://alice:pw@127.0.0.1:5433/autoins")
    assert (endpoint.host, endpoint.port, endpoint.user, endpoint.password, endpoint.database) == (
        "127.0.0.1", 5433, "alice", "pw", "autoins",
    )
    assert endpoint.startable


def test_missing_parts_take_the_usual_defaults():
    endpoint = parse_postgres_url("postgres://127.0.0.1")
    assert (endpoint.port, endpoint.user, endpoint.database) == (5432, "postgres", "postgres")
    assert parse_redis_url("redis://localhost").port == 6379
    assert parse_kafka_bootstrap("localhost").port == 9092


@pytest.mark.parametrize(
    ("parse", "url", "key", "bad_port"),
    [
        (parse_postgres_url, "postgresql://postgres@127.0.0.1:99x/autoins", "DATABASE_URL", "'99x'"),
        (parse_postgres_url, "postgresql://postgres@127.0.0.1:70000/autoins", "DATABASE_URL", "'70000'"),
        (parse_redis_url, "redis://127.0.0.1:-1/0", "REDIS_URL", "'-1'"),
        (parse_kafka_bootstrap, "127.0.0.1:notaport", "KAFKA_BOOTSTRAP_SERVERS", "'notaport'"),
        (parse_kafka_bootstrap, "127.0.0.1:0", "KAFKA_BOOTSTRAP_SERVERS", "0"),
    ],
)
def test_a_malformed_port_is_one_line_naming_the_key(parse, url, key, bad_port):
    with pytest.raises(BadServiceUrl) as raised:
        parse(url)
    message = str(raised.value)
    assert message.startswith(key) and bad_port in message and "1-65535" in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("parse", "url"),
    [
        (parse_postgres_url, "mysql://root@127.0.0.1/db"),
        (parse_redis_url, "http://127.0.0.1:6379"),
        (parse_postgres_url, "postgresql:///autoins"),
        (parse_kafka_bootstrap, " , "),
        (parse_kafka_bootstrap, "SSL://broker:9093"),
        (parse_kafka_bootstrap, "[::1:9092"),
        (parse_redis_url, "redis://[::1/0"),
    ],
)
def test_wrong_scheme_or_missing_host_is_refused(parse, url):
    with pytest.raises(BadServiceUrl):
        parse(url)


def test_kafka_bootstrap_lists_and_ipv6_are_parsed():
    endpoint = parse_kafka_bootstrap("PLAINTEXT://[::1]:19092, 127.0.0.1:19093")
    assert endpoint.addresses == (("::1", 19092), ("127.0.0.1", 19093))
    assert endpoint.loopback
    assert not endpoint.startable  # two brokers: we never start a cluster


@pytest.mark.parametrize("host", ["127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost", "LOCALHOST"])
def test_loopback_hosts(host):
    assert is_loopback(host)


@pytest.mark.parametrize("host", ["10.0.0.5", "192.0.2.1", "db.example.com", "0.0.0.0", "::"])
def test_non_loopback_hosts(host):
    assert not is_loopback(host)


def test_only_plain_loopback_tcp_urls_are_startable():
    assert parse_redis_url("redis://127.0.0.1:6390/1").startable
    assert not parse_redis_url("redis://cache.internal:6379/0").startable
    assert not parse_redis_url("rediss://127.0.0.1:6379/0").startable  # TLS: we would not serve it
    assert not parse_redis_url("unix:///run/redis.sock").startable
    assert not parse_postgres_url("postgresql://u@10.1.2.3:5432/db").startable


def test_endpoints_reads_all_three_settings():
    found = endpoints(Settings(database_url="postgresql://postgres@127.0.0.1:6543/x",
                               redis_url="redis://127.0.0.1:6380/0",
                               kafka_bootstrap_servers="127.0.0.1:19092"))
    assert {s: e.port for s, e in found.items()} == {Service.POSTGRES: 6543, Service.REDIS: 6380, Service.KAFKA: 19092}
