"""Where each service should be, parsed from the settings' URLs. Pure: no sockets here.

Settings already check the schemes; this module catches what they let through (a port that is
not a number in 1-65535, a missing host) and decides whether a URL is one we may start a server
for: only a single loopback TCP address (we never start servers for remote URLs).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import SplitResult, unquote, urlsplit

from autoins.stack.errors import BadServiceUrl
from config.fail_closed import is_loopback
from config.settings import Settings


class Service(StrEnum):
    POSTGRES = "postgres"
    REDIS = "redis"
    KAFKA = "kafka"
    PROMETHEUS = "prometheus"  # optional (autoins/stack/monitoring.py): started when installed
    ALERTMANAGER = "alertmanager"

    @property
    def label(self) -> str:
        return {"postgres": "PostgreSQL", "redis": "Redis", "kafka": "Kafka", "prometheus": "Prometheus",
                "alertmanager": "Alertmanager"}[self.value]

    @property
    def setting(self) -> str:
        """The environment key a person edits to move this service."""
        return {"postgres": "DATABASE_URL", "redis": "REDIS_URL", "kafka": "KAFKA_BOOTSTRAP_SERVERS",
                "prometheus": "PROMETHEUS_PORT", "alertmanager": "ALERTMANAGER_PORT"}[self.value]


DEFAULT_PORTS = {Service.POSTGRES: 5432, Service.REDIS: 6379, Service.KAFKA: 9092}
SERVICE_ORDER = (Service.POSTGRES, Service.REDIS, Service.KAFKA)
MONITORING_ORDER = (Service.ALERTMANAGER, Service.PROMETHEUS)  # Prometheus sends to the Alertmanager


@dataclass(frozen=True)
class Endpoint:
    """One service's configured location. `addresses` has one entry except for Kafka bootstrap
    lists; `startable` says whether `stack up` may launch a server for it when it is silent."""

    service: Service
    url: str
    addresses: tuple[tuple[str, int], ...]
    user: str | None = None
    password: str | None = None
    database: str | None = None
    tcp: bool = True  # False for unix:// and rediss:// (TLS): we probe those but never start them

    @property
    def host(self) -> str:
        return self.addresses[0][0]

    @property
    def port(self) -> int:
        return self.addresses[0][1]

    @property
    def loopback(self) -> bool:
        return all(is_loopback(host) for host, _ in self.addresses)

    @property
    def startable(self) -> bool:
        return self.tcp and len(self.addresses) == 1 and self.loopback


def endpoints(settings: Settings) -> dict[Service, Endpoint]:
    """All three endpoints, or BadServiceUrl naming the first bad key."""
    return {
        Service.POSTGRES: parse_postgres_url(settings.database_url),
        Service.REDIS: parse_redis_url(settings.redis_url),
        Service.KAFKA: parse_kafka_bootstrap(settings.kafka_bootstrap_servers),
    }


def parse_postgres_url(url: str) -> Endpoint:
    parts = _split(Service.POSTGRES, url, url)
    if parts.scheme not in {"postgres", "postgresql"}:
        raise BadServiceUrl(f"DATABASE_URL {url!r}: must be a postgresql:// URL")
    host, port = _host_port(Service.POSTGRES, url, parts)
    return Endpoint(
        Service.POSTGRES,
        url,
        ((host, port),),
        user=unquote(parts.username) if parts.username else "postgres",
        password=unquote(parts.password) if parts.password else None,
        database=parts.path.lstrip("/") or "postgres",
    )


def parse_redis_url(url: str) -> Endpoint:
    parts = _split(Service.REDIS, url, url)
    if parts.scheme == "unix":
        return Endpoint(Service.REDIS, url, (("unix:" + parts.path, 0),), tcp=False)
    if parts.scheme not in {"redis", "rediss"}:
        raise BadServiceUrl(f"REDIS_URL {url!r}: must be a redis:// URL")
    host, port = _host_port(Service.REDIS, url, parts)
    return Endpoint(
        Service.REDIS,
        url,
        ((host, port),),
        password=unquote(parts.password) if parts.password else None,
        tcp=parts.scheme == "redis",
    )


def parse_kafka_bootstrap(servers: str) -> Endpoint:
    """`host:port[,host:port…]`, IPv6 as `[::1]:9092`; an optional `PLAINTEXT://` prefix is allowed."""
    addresses: list[tuple[str, int]] = []
    for raw in servers.split(","):
        item = raw.strip()
        if not item:
            continue
        scheme, sep, rest = item.partition("://")
        if sep and scheme.lower() != "plaintext":
            raise BadServiceUrl(
                f"KAFKA_BOOTSTRAP_SERVERS {servers!r}: {scheme}:// listeners are not supported here"
            )
        parts = _split(Service.KAFKA, servers, f"kafka://{rest if sep else item}")
        addresses.append(_host_port(Service.KAFKA, servers, parts))
    if not addresses:
        raise BadServiceUrl(f"KAFKA_BOOTSTRAP_SERVERS {servers!r}: expected host:port")
    return Endpoint(Service.KAFKA, servers, tuple(addresses))


def _split(service: Service, shown: str, url: str) -> SplitResult:
    try:
        return urlsplit(url)
    except ValueError as error:  # e.g. "Invalid IPv6 URL" for an unclosed bracket
        raise BadServiceUrl(f"{service.setting} {shown!r}: {error}") from None


def _host_port(service: Service, url: str, parts: SplitResult) -> tuple[str, int]:
    try:
        port = parts.port
    except ValueError:
        port_text = parts.netloc.rpartition(":")[2]
        raise BadServiceUrl(
            f"{service.setting} {url!r}: port {port_text!r} is not a number in 1-65535"
        ) from None
    host = parts.hostname
    if not host:
        raise BadServiceUrl(f"{service.setting} {url!r}: no host")
    if port == 0:
        raise BadServiceUrl(f"{service.setting} {url!r}: port 0 is not a number in 1-65535")
    return host, port or DEFAULT_PORTS[service]
