"""Where the HTTP ingress answers, derived from the settings in one place: what `autoins serve` prints and what
the CLI's API clients (`autoins replay`) call."""

from __future__ import annotations

from config.settings import Settings

WILDCARD_HOSTS = ("0.0.0.0", "::")


def http_host_port(settings: Settings) -> str:
    """`host:port` of the ingress; a wildcard bind address is reached on the loopback."""
    host = "127.0.0.1" if settings.http_host in WILDCARD_HOSTS else settings.http_host
    return f"{host}:{settings.http_port}"


def api_base_url(settings: Settings) -> str:
    return f"http://{http_host_port(settings)}"
