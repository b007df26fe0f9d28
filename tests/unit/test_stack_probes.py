"""Protocol fingerprints (pure byte checks), binary overrides and listener addresses."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from autoins.stack.binaries import ENV_REDIS_SERVER, ENV_TANSU, BinaryOverrides, redis_server, tansu
from autoins.stack.errors import BinaryNotFound
from autoins.stack.kafka_broker import listener_urls
from autoins.stack.probes import (
    describe_reply,
    kafka_api_versions_request,
    kafka_reply_is_kafka,
    postgres_reply_is_postgres,
    redis_reply_is_redis,
)
from autoins.stack.redis_server import bind_addresses

HTTP_REPLY = b"HTTP/1.0 400 Bad request\r\nServer: SimpleHTTP/0.6\r\n\r\n"


def test_kafka_api_versions_request_is_a_sized_v0_request():
    request = kafka_api_versions_request(correlation_id=7, client_id="t")
    size, api_key, version, correlation, client_len = struct.unpack(">ihhih", request[:14])
    assert (size, api_key, version, correlation, client_len) == (len(request) - 4, 18, 0, 7, 1)
    assert request[14:] == b"t"


def test_a_kafka_reply_must_echo_our_correlation_id():
    reply = struct.pack(">iih", 226, 7, 0) + b"\x00" * 20
    assert kafka_reply_is_kafka(reply, correlation_id=7)
    assert not kafka_reply_is_kafka(reply, correlation_id=8)
    assert not kafka_reply_is_kafka(HTTP_REPLY, correlation_id=7)
    assert not kafka_reply_is_kafka(b"\x00\x00", correlation_id=7)


def test_postgres_answers_an_ssl_request_with_one_letter():
    assert postgres_reply_is_postgres(b"N") and postgres_reply_is_postgres(b"S")
    assert not postgres_reply_is_postgres(HTTP_REPLY) and not postgres_reply_is_postgres(b"")


def test_redis_answers_ping_with_pong_or_an_error_line():
    assert redis_reply_is_redis(b"+PONG\r\n")
    assert redis_reply_is_redis(b"-NOAUTH Authentication required.\r\n")
    assert not redis_reply_is_redis(HTTP_REPLY) and not redis_reply_is_redis(b"")


def test_a_foreign_reply_is_described_in_one_printable_line():
    assert describe_reply(HTTP_REPLY) == "it answered 'HTTP/1.0 400 Bad request'"
    assert describe_reply(b"") == "it closed the connection without answering"
    assert "\n" not in describe_reply(b"\x00\x01junk\r\nmore")


def test_binary_overrides_come_from_the_given_mapping_only():
    overrides = BinaryOverrides.from_environ({ENV_REDIS_SERVER: "/opt/redis-server", ENV_TANSU: " "})
    assert overrides == BinaryOverrides(redis_server=Path("/opt/redis-server"))


def test_an_override_pointing_nowhere_is_a_one_line_error(tmp_path: Path):
    with pytest.raises(BinaryNotFound, match=rf"cannot start Redis: {ENV_REDIS_SERVER}=.*does not exist"):
        redis_server(tmp_path / "missing")
    not_executable = tmp_path / "tansu"
    not_executable.write_text("")
    with pytest.raises(BinaryNotFound, match="is not an executable file"):
        tansu(not_executable)


def test_localhost_listens_on_loopback_and_is_advertised_as_written():
    assert listener_urls("localhost", 19092) == ("tcp://127.0.0.1:19092", "tcp://localhost:19092")
    assert listener_urls("::1", 19092) == ("tcp://[::1]:19092", "tcp://[::1]:19092")
    assert bind_addresses("localhost") == ["127.0.0.1", "-::1"]
    assert bind_addresses("127.0.0.1") == ["127.0.0.1"]
