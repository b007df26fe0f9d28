"""Settings: parsed once at an entrypoint, frozen, passed down (STYLE.md habit 10).

Sources, highest first: keyword arguments, process environment, `.autoins/stack.env` (written by
`autoins stack up`: the URLs actually in use; never read in production), `.env.<environment>`,
`.env`, the defaults below.
`ENVIRONMENT` (process env, or `.env`) picks the `.env.<environment>` file.
Production refuses to start with a missing or default secret or a development password.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# Values that exist only so a development machine works out of the box; production refuses them.
DEV_JWT_SECRET = "dev-secret-key-change-in-production"
DEV_PASSWORDS = frozenset({"", "postgres", "password", "pass", "dev", "changeme", "secret", "admin"})


class Environment(StrEnum):
    DEVELOPMENT = "development"
    STAGING = "staging"
    PRODUCTION = "production"


class SettingsError(ValueError):
    """A configuration that must not start; the message is one line that names the key."""


class Settings(BaseSettings):
    """Every knob of the system. Units are in the names (`_s`, `_ms`, `_months`)."""

    model_config = SettingsConfigDict(
        env_file_encoding="utf-8", case_sensitive=False, extra="ignore", frozen=True
    )

    # -- environment (plan §7)
    environment: Environment = Environment.DEVELOPMENT
    debug: bool = False
    log_level: str = "INFO"
    log_json: bool = True

    # -- PostgreSQL (plan §1.3 pool tuning; asyncpg's pool has min/max rather than size/overflow:
    #    min_size = db_pool_size, max_size = db_pool_size + db_max_overflow)
    database_url: str = "postgresql://postgres@127.0.0.1:5432/autoins"
    db_pool_size: int = Field(default=10, ge=1)
    db_max_overflow: int = Field(default=20, ge=0)
    db_pool_timeout_s: float = Field(default=30.0, gt=0)
    db_connect_timeout_s: float = Field(default=10.0, gt=0)
    db_statement_timeout_ms: int = Field(default=30_000, ge=0)
    db_pool_recycle_s: float = Field(default=3600.0, gt=0)

    # -- Redis
    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_max_connections: int = Field(default=50, ge=1)
    redis_socket_timeout_s: float = Field(default=5.0, gt=0)

    # -- Kafka
    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    kafka_consumer_group: str = "telematics-consumers-v2"
    kafka_num_consumers: int = Field(default=1, ge=1)
    kafka_topic_events: str = "telematics.events"
    kafka_topic_dlq: str = "telematics.events.dlq"
    kafka_partitions: int = Field(default=8, ge=1)
    kafka_replication_factor: int = Field(default=1, ge=1)
    kafka_session_timeout_ms: int = Field(default=6000, ge=1000)  # KAFKA_NOTES: 45 s default joins slowly
    kafka_max_message_bytes: int = Field(default=16 * 1024 * 1024, ge=1024)
    # KAFKA_NOTES: tansu answers a waiting fetch only when this runs out; librdkafka's 500 ms default made a
    # caught-up consumer see a message p50 78 ms after it was produced, 100 ms gave p50 2.8 / p95 4.2 ms.
    kafka_fetch_wait_max_ms: int = Field(default=100, ge=1)

    # -- JWT
    jwt_secret_key: SecretStr = SecretStr(DEV_JWT_SECRET)
    jwt_algorithm: str = "HS256"
    jwt_expire_minutes: int = Field(default=1440, ge=1)

    # -- performance tuning (plan §7)
    cache_ttl_default: int = Field(default=300, ge=0)
    cache_ttl_risk_score: int = Field(default=3600, ge=0)
    ml_batch_size: int = Field(default=32, ge=1)

    # -- monitoring
    enable_metrics: bool = True

    # -- API on Ray Serve (DESIGN.md §5; RAY_NOTES.md: replicas take no CPU, sockets hold a slot)
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8000, ge=1, le=65535)
    serve_haproxy: bool = True  # PERF_NOTES: the HAProxy ingress removes the Python proxy hop
    api_num_replicas: int = Field(default=2, ge=1)
    api_max_ongoing_requests: int = Field(default=100, ge=1)
    ws_num_replicas: int = Field(default=1, ge=1)
    ws_max_ongoing_requests: int = Field(default=1000, ge=1)  # one slot per open socket, own deployment
    ws_heartbeat_s: float = Field(default=15.0, gt=0)
    ws_recent_messages: int = Field(default=200, ge=1)  # per driver, for ?since= resume
    l1_cache_ttl_s: float = Field(default=30.0, gt=0)  # bound on staleness if an invalidation is lost
    l1_cache_maxsize: int = Field(default=10_000, ge=1)
    cache_warm_budget_s: float = Field(default=5.0, ge=0)
    login_max_failures: int = Field(default=5, ge=1)  # per username and client, per window
    login_failure_window_s: int = Field(default=300, ge=1)
    # One access line per request cost ~20 % of a replica's CPU (py-spy: structlog rendering plus Ray's stderr
    # capture); by default only errors (status >= 400) and slow requests are logged, every one when true.
    access_log_all: bool = False
    access_log_slow_ms: float = Field(default=500.0, ge=0)
    ingest_max_readings: int = Field(default=1000, ge=1)
    ingest_kafka_timeout_s: float = Field(default=5.0, gt=0)

    # -- risk model (issue 6)
    models_dir: Path = Path(".autoins/models")
    model_version: str | None = None  # None: the newest artifact in models_dir
    ml_batch_wait_s: float = Field(default=0.002, ge=0)
    # two, so a replica crash leaves one answering (the API's prior, the scorer) while Serve replaces it
    ml_num_replicas: int = Field(default=2, ge=1)
    ml_max_ongoing_requests: int = Field(default=256, ge=1)  # >= ml_batch_size × concurrent batches
    credibility_k_trips: float = Field(default=40.0, gt=0)  # Z = n / (n + k), n = trips in the window
    scoring_window_days: int = Field(default=365, ge=1)

    # -- pipeline shape (DESIGN.md §1)
    num_shards: int = Field(default=4, ge=1)
    num_persistence: int = Field(default=2, ge=1)
    consumer_batch_size: int = Field(default=10_000, ge=1)  # the largest batch (a drain); see consumer_min_batch_size
    consumer_max_inflight_batches: int = Field(default=2, ge=1)
    persistence_batch_size: int = Field(default=10_000, ge=1)
    snapshot_every_events: int = Field(default=1_000, ge=1)
    # Adaptive batching (domain/batch_sizing.py, docs/PIPELINE.md): a caught-up consumer polls batches of about
    # what is waiting, at least this cap (never above consumer_batch_size), without lingering; the batch grows to
    # consumer_batch_size and the linger to consumer_linger_ms as the backlog grows. Equal sizes: fixed batches.
    consumer_min_batch_size: int = Field(default=500, ge=1)
    consumer_linger_ms: int = Field(default=50, ge=0)  # the longest wait to fill a batch (when far behind)
    consumer_idle_wait_ms: int = Field(default=100, ge=0)  # an empty poll with nothing in flight blocks this long
    # A partition idle this long (wall time) gets a log tick record that carries its log time on, so a silent
    # device's trip closes even when no other device writes there (docs/DOMAIN.md §3, "Silence"); 0 = never.
    log_tick_idle_s: float = Field(default=15.0, ge=0)
    shard_idle_batches: int = Field(default=200, ge=2)  # passivate drivers untouched for this many batches
    max_future_skew_s: int = Field(default=300, ge=0)  # readings further ahead of the clock go to the DLQ
    pipeline_retry_max_s: float = Field(default=5.0, gt=0)  # backoff cap while PostgreSQL/Redis are away

    # -- partitions and retention (plan §1.1)
    partitions_ahead_months: int = Field(default=3, ge=0)
    retention_months: int = Field(default=12, ge=1)  # >= 1: retention never touches the current month
    archive_dir: Path = Path(".autoins/archive")

    # -- Ray
    ray_address: str | None = None
    ray_namespace: str = "autoins"

    # -- local stack
    data_dir: Path = Path(".autoins")
    migrations_dir: Path = PROJECT_ROOT / "migrations"

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, env_settings, dotenv_settings,
                                   file_secret_settings):  # type: ignore[no-untyped-def]
        # The process environment reaches us through load_settings (as init values), so a test can
        # pass its own environment and nothing below an entrypoint reads os.environ.
        return (init_settings, dotenv_settings)

    @field_validator("database_url")
    @classmethod
    def _database_url_is_postgres(cls, value: str) -> str:
        if urlsplit(value).scheme not in {"postgres", "postgresql"}:
            raise ValueError("must be a postgresql:// URL")
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_url_is_redis(cls, value: str) -> str:
        if urlsplit(value).scheme not in {"redis", "rediss", "unix"}:
            raise ValueError("must be a redis:// URL")
        return value

    @model_validator(mode="after")
    def _production_refuses_defaults(self) -> Settings:
        if self.environment is not Environment.PRODUCTION:
            return self
        secret = self.jwt_secret_key.get_secret_value()
        if not secret or secret == DEV_JWT_SECRET or len(secret) < 32:
            raise SettingsError(
                "JWT_SECRET_KEY: production needs a secret of at least 32 characters, not the default"
            )
        for key, url in (("DATABASE_URL", self.database_url), ("REDIS_URL", self.redis_url)):
            password = urlsplit(url).password or ""
            if password.lower() in DEV_PASSWORDS:
                raise SettingsError(f"{key}: production refuses a missing or development password")
        if self.debug:
            raise SettingsError("DEBUG: production refuses debug=true")
        return self

    @property
    def is_production(self) -> bool:
        return self.environment is Environment.PRODUCTION

    @property
    def database_name(self) -> str:
        return urlsplit(self.database_url).path.lstrip("/") or "postgres"

    def with_overrides(self, **changes: Any) -> Settings:
        """A validated copy with some fields changed (tests, per-run databases)."""
        return type(self).model_validate({**self.model_dump(), **changes})

    def redacted(self) -> dict[str, Any]:
        """Every field, passwords and secrets masked: for `autoins config` and logs."""
        shown = self.model_dump(mode="json")
        shown["jwt_secret_key"] = "**********"
        for key in ("database_url", "redis_url"):
            parts = urlsplit(shown[key])
            if parts.password:
                shown[key] = shown[key].replace(f":{parts.password}@", ":****@", 1)
        return shown


def env_files(environment: str, root: Path) -> tuple[Path, ...]:
    """Lowest priority first, as pydantic-settings wants them. Production never reads the local
    stack's file: its URLs come from its own environment only."""
    files = (root / ".env", root / f".env.{environment}")
    if environment != Environment.PRODUCTION:
        files += (root / ".autoins" / "stack.env",)
    return files


def load_settings(root: Path | None = None, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Build Settings at an entrypoint: the only place that reads the process environment."""
    root = root or Path.cwd()
    environ = os.environ if environ is None else environ
    environment = environ.get("ENVIRONMENT") or _read_key(root / ".env", "ENVIRONMENT") or "development"
    try:
        Environment(environment.lower())
    except ValueError:
        raise SettingsError(
            f"ENVIRONMENT: {environment!r} is not one of development, staging, production"
        ) from None
    files = tuple(p for p in env_files(environment.lower(), root) if p.is_file())
    fields = Settings.model_fields
    from_environ = {k.lower(): v for k, v in environ.items() if k.lower() in fields}
    try:
        return Settings(_env_file=files or None, **{**from_environ, **overrides})
    except SettingsError:
        raise
    except ValueError as error:  # pydantic ValidationError: reduce to one line naming the key
        raise SettingsError(_one_line(error)) from None


def _one_line(error: ValueError) -> str:
    errors = getattr(error, "errors", None)
    if not callable(errors):
        return str(error).splitlines()[0]
    first = errors()[0]
    key = ".".join(str(part) for part in first.get("loc", ())) or "settings"
    message = str(first.get("msg", "invalid value"))
    # A SettingsError raised inside a validator arrives wrapped: keep its own words.
    message = message.removeprefix("Value error, ")
    if message.split(":", 1)[0].isupper():
        return message
    return f"{key.upper()}: {message}"


def _read_key(path: Path, key: str) -> str | None:
    if not path.is_file():
        return None
    for line in path.read_text(encoding="utf-8").splitlines():
        name, sep, value = line.partition("=")
        if sep and name.strip() == key:
            return value.strip().strip("'\"")
    return None
