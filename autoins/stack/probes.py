"""Does the configured service answer? Two steps, both bounded by `timeout_s`:

1. a protocol fingerprint over a raw socket (PostgreSQL SSLRequest, Redis inline PING, Kafka
   ApiVersions v0): quick, quiet, and it tells "nothing listens" from "something else listens",
   which a client library only reports as a slow timeout (and librdkafka as log spam);
2. the real client (asyncpg connect, redis PING, Kafka metadata) against the full URL, which checks
   the database, credentials and db index.

The byte-level helpers are pure so unit tests cover them without sockets.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import socket
import struct
from collections.abc import Coroutine
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from autoins.stack.endpoints import Endpoint, Service
from autoins.stack.errors import one_line

PROBE_TIMEOUT_S = 2.0

# PostgreSQL: SSLRequest is length 8 + code 80877103; a server answers one byte, 'S' or 'N'.
POSTGRES_SSL_REQUEST = struct.pack(">ii", 8, 80877103)
REDIS_INLINE_PING = b"PING\r\n"
KAFKA_API_VERSIONS_KEY = 18
KAFKA_CORRELATION_ID = 0x5A17


class ProbeState(StrEnum):
    READY = "ready"  # answers and serves the URL as given
    NO_DATABASE = "no_database"  # PostgreSQL answers, the URL's database does not exist
    CLOSED = "closed"  # nothing accepts connections there
    FOREIGN = "foreign"  # something accepts connections but does not speak the protocol
    REFUSED = "refused"  # the right server, but it refuses us (auth, unknown role, TLS)


@dataclass(frozen=True)
class Probe:
    state: ProbeState
    detail: str = ""

    @property
    def answers(self) -> bool:
        return self.state is ProbeState.READY


# -- pure protocol helpers ------------------------------------------------------------------------


def postgres_reply_is_postgres(reply: bytes) -> bool:
    return reply[:1] in (b"S", b"N")


def redis_reply_is_redis(reply: bytes) -> bool:
    """`+PONG`, or an error such as `-NOAUTH`/`-DENIED` that only Redis sends in this form."""
    return reply.startswith(b"+PONG") or (reply.startswith(b"-") and reply.rstrip().isascii())


def kafka_api_versions_request(correlation_id: int = KAFKA_CORRELATION_ID, client_id: str = "autoins-stack") -> bytes:
    """ApiVersions v0 with request header v1: the one request every Kafka broker version accepts."""
    client = client_id.encode()
    body = struct.pack(">hhih", KAFKA_API_VERSIONS_KEY, 0, correlation_id, len(client)) + client
    return struct.pack(">i", len(body)) + body


def kafka_reply_is_kafka(reply: bytes, correlation_id: int = KAFKA_CORRELATION_ID) -> bool:
    if len(reply) < 10:
        return False
    size, echoed, error_code = struct.unpack(">iih", reply[:10])
    return echoed == correlation_id and 6 <= size <= 1_000_000 and error_code in (0, 35)


def describe_reply(reply: bytes) -> str:
    """What a foreign server said, printable in one line (e.g. `HTTP/1.0 400 Bad request`)."""
    if not reply:
        return "it closed the connection without answering"
    text = reply[:60].decode("ascii", errors="replace").splitlines()[0]
    printable = "".join(c if c.isprintable() else "?" for c in text)
    return f"it answered {printable!r}"


# -- socket I/O ------------------------------------------------------------------------------------

# service -> (hello, recogniser, bytes wanted, whether a newline ends the reply early)
_HELLO = {
    Service.POSTGRES: (POSTGRES_SSL_REQUEST, postgres_reply_is_postgres, 1, True),
    Service.REDIS: (REDIS_INLINE_PING, redis_reply_is_redis, 64, True),
    Service.KAFKA: (kafka_api_versions_request(), kafka_reply_is_kafka, 10, False),
}


def fingerprint(service: Service, host: str, port: int, timeout_s: float = PROBE_TIMEOUT_S) -> Probe:
    """READY here means only "speaks the protocol"; `probe` then asks the real client."""
    hello, recognise, wanted, newline_ends = _HELLO[service]
    try:
        sock = socket.create_connection((host, port), timeout=timeout_s)
    except ConnectionRefusedError:
        return Probe(ProbeState.CLOSED, f"nothing listens on {host}:{port}")
    except TimeoutError:
        return Probe(ProbeState.CLOSED, f"no answer from {host}:{port} within {timeout_s:g} s")
    except OSError as error:
        return Probe(ProbeState.CLOSED, f"cannot reach {host}:{port}: {error.strerror or error}")
    with sock:
        try:
            sock.sendall(hello)
            reply = _read_reply(sock, wanted, newline_ends)
        except TimeoutError:
            return Probe(ProbeState.FOREIGN, f"it accepted a connection but did not answer within {timeout_s:g} s")
        except OSError as error:
            return Probe(ProbeState.FOREIGN, f"it reset the connection ({error.strerror or error})")
    if recognise(reply):
        return Probe(ProbeState.READY)
    return Probe(ProbeState.FOREIGN, describe_reply(reply))


def _read_reply(sock: socket.socket, wanted: int, newline_ends: bool) -> bytes:
    data = b""
    while len(data) < wanted and not (newline_ends and b"\n" in data):
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def probe(endpoint: Endpoint, timeout_s: float = PROBE_TIMEOUT_S) -> Probe:
    """Fingerprint every address (Kafka lists may hold several), then ask the real client."""
    if not endpoint.tcp:
        return _client_probe(endpoint, timeout_s)
    first: Probe | None = None
    for host, port in endpoint.addresses:
        found = fingerprint(endpoint.service, host, port, timeout_s)
        if found.state is ProbeState.READY:
            return _client_probe(endpoint, timeout_s)
        first = first or found
    assert first is not None
    return first


def _client_probe(endpoint: Endpoint, timeout_s: float) -> Probe:
    if endpoint.service is Service.POSTGRES:
        return run_coroutine(_postgres_client_probe(endpoint.url, timeout_s))
    if endpoint.service is Service.REDIS:
        return _redis_client_probe(endpoint.url, timeout_s)
    return _kafka_client_probe(endpoint.url, timeout_s)


async def _postgres_client_probe(url: str, timeout_s: float) -> Probe:
    import asyncpg

    try:
        conn = await asyncpg.connect(url, timeout=timeout_s)
    except asyncpg.InvalidCatalogNameError:
        return Probe(ProbeState.NO_DATABASE, "the database does not exist")
    except asyncpg.PostgresError as error:
        return Probe(ProbeState.REFUSED, one_line(str(error)))
    except Exception as error:  # OSError, timeouts, protocol errors: all "it will not serve us"
        return Probe(ProbeState.REFUSED, one_line(str(error) or type(error).__name__))
    await conn.close()
    return Probe(ProbeState.READY)


def _redis_client_probe(url: str, timeout_s: float) -> Probe:
    import redis

    client = redis.Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)
    try:
        client.ping()
    except redis.ConnectionError as error:
        state = ProbeState.CLOSED if "refused" in str(error).lower() else ProbeState.REFUSED
        return Probe(state, one_line(str(error)))
    except redis.RedisError as error:  # AuthenticationError, ResponseError (bad db index), …
        return Probe(ProbeState.REFUSED, one_line(str(error)))
    finally:
        client.close()
    return Probe(ProbeState.READY)


def _kafka_client_probe(bootstrap: str, timeout_s: float) -> Probe:
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient

    # log_level 0: a silent broker is reported by us in one line, not by librdkafka on stderr.
    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0, "socket.timeout.ms": int(timeout_s * 1000)})
    try:
        metadata = admin.list_topics(timeout=timeout_s)
    except KafkaException as error:
        return Probe(ProbeState.REFUSED, one_line(f"metadata request failed: {error}"))
    if not metadata.brokers:
        return Probe(ProbeState.REFUSED, "metadata lists no brokers")
    return Probe(ProbeState.READY)


def run_coroutine(coro: Coroutine[Any, Any, Any]) -> Any:
    """asyncio.run, also when called from inside a running loop (async tests, async callers)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()
