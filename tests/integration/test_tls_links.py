"""The TLS settings reach the real clients (docs/SECURITY.md §6), shown without mocks: against the local plaintext
PostgreSQL, Redis and Kafka a TLS client fails where the same settings over plaintext work, and a listener that
records the first bytes a client sends sees a TLS handshake record (0x16 0x03 …) from Redis and every Kafka client.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis.exceptions
from confluent_kafka import Consumer, KafkaException, Producer
from confluent_kafka.admin import AdminClient

from config.settings import Settings
from storage.kafka.clients import admin_config, consumer_config, producer_config
from storage.postgres.pool import connect, create_database_if_missing, create_pool
from storage.redis.client import create_redis

TLS_HANDSHAKE = 0x16  # TLS record type "handshake": a ClientHello opens every TLS connection


class FirstBytes:
    """A TCP listener on loopback that keeps the first bytes of each connection and hangs up."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.seen: list[bytes] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(2)
                with contextlib.suppress(OSError):
                    self.seen.append(conn.recv(5))

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()

    def saw_tls(self) -> bool:
        return any(first[:2] == bytes([TLS_HANDSHAKE, 0x03]) for first in self.seen)


@pytest.fixture
def listener() -> Iterator[FirstBytes]:
    first_bytes = FirstBytes()
    yield first_bytes
    first_bytes.close()


# -- PostgreSQL: TLS is negotiated in the protocol (SSLRequest), so the real server answers "no" ------------------


def a_ca_file(path: Path) -> Path:
    """A self-signed CA certificate (PEM), for the modes that verify the server."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "autoins test CA")])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True).sign(key, hashes.SHA256()))
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


@pytest.mark.parametrize("sslmode", ["require", "verify-ca", "verify-full"])
async def test_a_tls_sslmode_asks_the_real_server_for_tls_and_stops_at_its_no(settings, sslmode, tmp_path):
    tls = settings.with_overrides(database_sslmode=sslmode, database_sslrootcert=str(a_ca_file(tmp_path / "ca.pem")))
    with pytest.raises(ConnectionError, match="rejected SSL upgrade"):
        await create_pool(tls, min_size=1, max_size=1)
    with pytest.raises(ConnectionError, match="rejected SSL upgrade"):
        await connect(tls)
    with pytest.raises(ConnectionError, match="rejected SSL upgrade"):
        await create_database_if_missing(tls.database_dsn)


async def test_prefer_falls_back_to_plaintext_which_is_why_it_is_refused_beyond_development(settings):
    conn = await connect(settings.with_overrides(database_sslmode="prefer"))
    try:
        assert await conn.fetchval("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()") is False
    finally:
        await conn.close()


# -- Redis ---------------------------------------------------------------------------------------------------


async def test_rediss_speaks_tls_where_redis_speaks_plaintext(settings: Settings, listener):
    quick = settings.with_overrides(redis_socket_timeout_s=1.0)
    plain = create_redis(quick)
    try:
        assert await plain.ping()
    finally:
        await plain.aclose()
    for url in (quick.redis_url.replace("redis://", "rediss://", 1), f"rediss://127.0.0.1:{listener.port}/0"):
        client = create_redis(quick.with_overrides(redis_url=url), retry_on_timeout=False)
        try:
            with pytest.raises((redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)):
                await client.ping()  # the plaintext server never answers a ClientHello
        finally:
            await client.aclose()
    assert listener.saw_tls(), listener.seen


# -- Kafka: producer, consumer (also the DLQ producer's config) and admin ------------------------------------


def kafka_clients(settings: Settings) -> list[Producer | Consumer | AdminClient]:
    quiet = {"log_level": 0, "socket.timeout.ms": 2000}
    return [Producer(producer_config(settings, **quiet)),
            Consumer(consumer_config(settings, group_id="tls-probe", **quiet)),
            AdminClient(admin_config(settings, **quiet))]


def metadata(client: Producer | Consumer | AdminClient, timeout_s: float = 5.0) -> bool:
    try:
        return bool(client.list_topics(timeout=timeout_s).brokers)
    except KafkaException:
        return False


def close(client: Producer | Consumer | AdminClient) -> None:
    if isinstance(client, Consumer):
        client.close()


@pytest.mark.parametrize("protocol", ["SSL", "SASL_SSL"])
def test_every_kafka_client_speaks_tls_when_told(kafka_bootstrap, settings, listener, protocol):
    sasl = {"kafka_sasl_mechanism": "SCRAM-SHA-512", "kafka_sasl_username": "autoins",
            "kafka_sasl_password": "pw"} if protocol == "SASL_SSL" else {}
    plain = settings.with_overrides(kafka_bootstrap_servers=kafka_bootstrap)
    tls = plain.with_overrides(kafka_security_protocol=protocol, **sasl)
    for client in kafka_clients(plain):
        assert metadata(client)
        close(client)
    for client in kafka_clients(tls):
        assert not metadata(client, timeout_s=1.0)  # the plaintext broker cannot complete a TLS handshake
        close(client)
    for client in kafka_clients(tls.with_overrides(kafka_bootstrap_servers=f"127.0.0.1:{listener.port}")):
        metadata(client, timeout_s=1.0)
        close(client)
    assert len(listener.seen) >= 3 and all(first[:1] == bytes([TLS_HANDSHAKE]) for first in listener.seen), (
        listener.seen)
