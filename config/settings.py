"""Settings: parsed once at an entrypoint, frozen, passed down (STYLE.md habit 10).

Sources, highest first: keyword arguments, process environment, `.autoins/stack.env` (written by
`autoins stack up`: the URLs actually in use; never read in production), `.env.<environment>`,
`.env`, the defaults below.
`ENVIRONMENT` (process env, or `.env`) picks the `.env.<environment>` file.

Fail closed (config/fail_closed.py, docs/SECURITY.md §1): only development bound to loopback
(`is_local_development`) may run on the committed secrets, default passwords or plaintext links; every other
combination refuses to start with one line naming the key. Without ENVIRONMENT, a host bound beyond loopback
refuses too.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from config.fail_closed import (
    DEV_JWT_SECRET,
    DEV_MODEL_SIGNING_KEY,
    JWT_ALGORITHMS,
    SettingsError,
    is_loopback,
    refuse_insecure,
)
from config.links import PG_SSLMODES, postgres_dsn
from config.rollout_settings import RolloutSettings

PROJECT_ROOT = Path(__file__).resolve().parent.parent

class Environment(StrEnum):
    DEVELOPMENT = "development"
    STAGING = "staging"
    PRODUCTION = "production"



class Settings(RolloutSettings, BaseSettings):
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
    # TLS (docs/SECURITY.md §7): added to DATABASE_URL's query by `database_dsn` (a setting replaces the URL's
    # own ?sslmode= / ?sslrootcert=). sslrootcert: the CA file that verify-ca / verify-full check the server with.
    database_sslmode: str | None = None
    database_sslrootcert: str | None = None

    # -- Redis
    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_max_connections: int = Field(default=50, ge=1)
    redis_socket_timeout_s: float = Field(default=5.0, gt=0)
    redis_ssl_ca_certs: Path | None = None  # rediss:// only: the CA file (None: the system's CAs)

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
    # Every Kafka client (producer, consumers, DLQ, admin) gets these (storage/kafka/clients.py).
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_ca_location: Path | None = None  # SSL/SASL_SSL: the CA file (None: the system's CAs)

    # Outside development on loopback, plaintext links to PostgreSQL, Redis or Kafka refuse to start unless true
    # (e.g. a sidecar that terminates TLS on the same host); docs/SECURITY.md §7.
    allow_plaintext_links: bool = False

    # -- JWT: HS256/384/512 sign and verify with jwt_secret_key; RS*/ES* sign with jwt_secret_key (a PEM private
    #    key) and verify with jwt_public_key (its PEM public key). Every token carries and is checked for aud/iss.
    jwt_secret_key: SecretStr = SecretStr(DEV_JWT_SECRET)
    jwt_algorithm: str = "HS256"
    jwt_public_key: str | None = None
    jwt_audience: str = Field(default="autoins-api", min_length=1)
    jwt_issuer: str = Field(default="autoins", min_length=1)
    jwt_expire_minutes: int = Field(default=1440, ge=1)
    # Revocation (docs/SECURITY.md §8): a replica re-reads a user's token version at least this often, so a
    # revocation whose pub/sub message was lost still takes effect within it (normally: the pub/sub latency).
    session_check_ttl_s: float = Field(default=5.0, gt=0)

    # -- operator surfaces (docs/SECURITY.md §4): `Authorization: Bearer <operator_token>` opens /metrics and the
    #    details of /health/ready; without one, /metrics is open only to development bound to loopback.
    operator_token: SecretStr | None = None
    api_docs_enabled: bool | None = None  # /docs, /redoc, /openapi.json; None: on everywhere but production

    # -- web console at / (docs/CONSOLE.md): map tiles, e.g. https://tile.openstreetmap.org/{z}/{x}/{y}.png;
    #    empty (the default): no tiles, routes and vehicles draw on a blank background, so it works offline
    console_tile_url: str = ""
    console_tile_attribution: str = ""

    # -- performance tuning (plan §7)
    cache_ttl_default: int = Field(default=300, ge=0)
    cache_ttl_risk_score: int = Field(default=3600, ge=0)
    ml_batch_size: int = Field(default=32, ge=1)

    # -- monitoring
    enable_metrics: bool = True
    metrics_cache_s: float = Field(default=5.0, ge=0)  # a merged cluster scrape is reused this long
    readiness_cache_s: float = Field(default=1.0, ge=0)  # /health/ready's checks are reused this long
    # Prometheus and Alertmanager started by `autoins stack up` (autoins/stack/monitoring.py, docs/OPERATIONS.md)
    prometheus_port: int = Field(default=9090, ge=1, le=65535)  # taken by something else: a free port is used
    prometheus_url: str | None = None  # the Prometheus `autoins rollout` asks (.autoins/stack.env names the stack's)
    alertmanager_port: int = Field(default=9093, ge=1, le=65535)
    prometheus_scrape_interval_s: float = Field(default=15.0, gt=0)
    prometheus_evaluation_interval_s: float = Field(default=15.0, gt=0)
    # Ray's file of every node's metrics export (the dashboard head writes it into its session directory);
    # None: the one of the head `autoins serve` starts (autoins/ray_head.py's temp dir)
    ray_metrics_discovery_file: Path | None = None
    alert_for_s: float | None = Field(default=None, ge=0)  # every rule's `for:` instead of its own (tests: seconds)
    alert_webhook_url: str | None = None  # Alertmanager posts every alert here; None: alerts are only shown in its UI
    alert_group_wait_s: float = Field(default=30.0, ge=0)  # Alertmanager's group_wait (and group_interval / 6)

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
    # WebSocket abuse (docs/SECURITY.md §9), per LiveGateway replica: open sockets per user and per client
    # address (behind the HAProxy ingress every client has its address: see trusted_proxy_hops), the longest
    # a send may wait on a client that does not read, and the largest message a client may send.
    ws_max_sockets_per_user: int = Field(default=8, ge=1)
    ws_max_sockets_per_address: int = Field(default=500, ge=1)
    ws_send_timeout_s: float = Field(default=10.0, gt=0)
    ws_max_client_message_bytes: int = Field(default=4096, ge=16)
    l1_cache_ttl_s: float = Field(default=30.0, gt=0)  # bound on staleness if an invalidation is lost
    l1_cache_maxsize: int = Field(default=10_000, ge=1)
    cache_warm_budget_s: float = Field(default=5.0, ge=0)
    # Login throttle per (client address, username) and the per-replica cap of password checks (docs/SECURITY.md §3)
    login_max_failures: int = Field(default=5, ge=1)  # free failures of a pair; then 2, 4, 8 … s between attempts
    login_failure_window_s: int = Field(default=300, ge=1)  # a pair is forgotten this long after its last delay
    login_delay_max_s: int = Field(default=300, ge=1)
    login_verify_concurrency: int = Field(default=1, ge=1)  # argon2 checks at once per replica (~25 ms each)
    login_verify_queue: int = Field(default=64, ge=0)  # more may wait (each up to login_verify_wait_s); then 429
    login_verify_wait_s: float = Field(default=2.0, gt=0)
    login_verify_duty: float = Field(default=0.5, gt=0, le=1)  # share of a core one replica's verifier may use
    trusted_proxy_hops: int = Field(default=0, ge=0)  # proxies that append to X-Forwarded-For (0: the TCP peer)
    # One access line per request cost ~20 % of a replica's CPU (py-spy: structlog rendering plus Ray's stderr
    # capture); by default only errors (status >= 400) and slow requests are logged, every one when true.
    access_log_all: bool = False
    access_log_slow_ms: float = Field(default=500.0, ge=0)
    ingest_max_readings: int = Field(default=1000, ge=1)  # body cap: × BYTES_PER_READING (16 KiB)
    # Request bodies (deployments/api/request_guard.py): login/auth and admin writes; every other route but ingest.
    body_max_bytes_small: int = Field(default=16 * 1024, ge=1024)
    body_max_bytes_default: int = Field(default=64 * 1024, ge=1024)
    ingest_kafka_timeout_s: float = Field(default=5.0, gt=0)
    # Device credentials and ingest limits (docs/SECURITY.md §6). Readings older than this window are refused on the
    # public ingest route (`ts_backdated`); older data goes through the admin import. 72 h: a phone offline over a
    # weekend still delivers its trips (our choice).
    ingest_max_backdate_s: int = Field(default=72 * 3600, ge=1)
    # Driver (bearer) tokens on the ingest route; None: on in development only (the replay tool and the tests post
    # as drivers there), off in staging and production, where devices post with their own key.
    ingest_driver_tokens: bool | None = None
    device_last_seen_interval_s: float = Field(default=60.0, gt=0)  # a device's last_seen_at written at most so often

    # -- risk model (issue 6)
    models_dir: Path = Path(".autoins/models")
    # HMAC-SHA256 key that signs every artifact's manifest and is checked before unpickling (docs/MODEL.md §6).
    # Kept out of models_dir: who can write there cannot sign. The default serves development on loopback only.
    model_signing_key: SecretStr = SecretStr(DEV_MODEL_SIGNING_KEY)
    model_version: str | None = None  # None: the newest artifact in models_dir
    ml_batch_wait_s: float = Field(default=0.002, ge=0)
    # two, so a replica crash leaves one answering (the API's prior, the scorer) while Serve replaces it
    ml_num_replicas: int = Field(default=2, ge=1)
    ml_max_ongoing_requests: int = Field(default=256, ge=1)  # >= ml_batch_size × concurrent batches
    credibility_k_trips: float = Field(default=40.0, gt=0)  # Z = n / (n + k), n = trips in the window
    scoring_window_days: int = Field(default=365, ge=1)
    # Fairness and drift (docs/SCORING.md): PSI above this is significant drift (industry convention: > 0.2);
    # a cohort whose mean score or premium is outside [low, high] × the portfolio's is flagged.
    drift_psi_alert: float = Field(default=0.2, gt=0)
    cohort_ratio_low: float = Field(default=0.8, gt=0)
    cohort_ratio_high: float = Field(default=1.25, gt=0)
    # The maintenance actor's drift gauges (docs/OPERATIONS.md): over the drivers scored in the last N days; below
    # these counts a PSI (the window) or a ratio (one cohort) is noise: exported as −1 (unknown; never alerts).
    drift_window_days: int = Field(default=30, ge=1)
    drift_min_drivers: int = Field(default=100, ge=1)
    cohort_min_drivers: int = Field(default=30, ge=1)

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
    # How often each consumer reloads which drivers are mileage_only (or erased) and have their new readings
    # stripped of positions: the worst-case delay from a consent change to the first stripped reading
    # (docs/PRIVACY.md §3). One small query per interval per consumer, none per batch.
    privacy_refresh_s: float = Field(default=5.0, gt=0, le=300)
    shard_idle_batches: int = Field(default=200, ge=2)  # passivate drivers untouched for this many batches
    max_future_skew_s: int = Field(default=300, ge=0)  # readings further ahead of the clock go to the DLQ
    pipeline_retry_max_s: float = Field(default=5.0, gt=0)  # backoff cap while PostgreSQL/Redis are away

    # -- partitions and retention (plan §1.1)
    partitions_ahead_months: int = Field(default=3, ge=0)
    retention_months: int = Field(default=12, ge=1)  # >= 1: retention never touches the current month
    archive_dir: Path = Path(".autoins/archive")

    # -- maintenance actor (docs/OPERATIONS.md "Maintenance"): how often each task runs, started with the pipeline
    maintenance_enabled: bool = True
    maintenance_tick_s: float = Field(default=60.0, gt=0)  # how often the actor asks what is due
    maintenance_partitions_every_s: float = Field(default=6 * 3600.0, gt=0)  # ensure PARTITIONS_AHEAD_MONTHS
    maintenance_retention_every_s: float = Field(default=24 * 3600.0, gt=0)  # archive and drop past retention
    maintenance_analyze_every_s: float = Field(default=3600.0, gt=0)  # ANALYZE new and recently filled partitions
    maintenance_report_every_s: float = Field(default=900.0, gt=0)  # sizes and unused indexes as metrics
    maintenance_drift_every_s: float = Field(default=3600.0, gt=0)  # fairness and drift gauges (DRIFT_WINDOW_DAYS)
    maintenance_retry_after_s: float = Field(default=600.0, gt=0)  # a failed (or abandoned) run is retried after
    maintenance_analyze_min_changed_rows: int = Field(default=1_000, ge=0)
    maintenance_analyze_changed_fraction: float = Field(default=0.1, ge=0)  # of the rows at the last ANALYZE

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

    @field_validator("kafka_security_protocol", "kafka_sasl_mechanism", mode="before")
    @classmethod
    def _upper_case(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("database_sslmode", "database_sslrootcert", "kafka_sasl_mechanism", "kafka_sasl_username",
                     "redis_ssl_ca_certs", "kafka_ssl_ca_location", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("database_sslmode")
    @classmethod
    def _sslmode_is_libpqs(cls, value: str | None) -> str | None:
        if value is not None and value not in PG_SSLMODES:
            raise ValueError(f"{value!r} is not one of {', '.join(sorted(PG_SSLMODES))}")
        return value

    @field_validator("console_tile_url")
    @classmethod
    def _tile_url_is_http(cls, value: str) -> str:
        if value and not value.startswith(("https://", "http://")):
            raise ValueError("CONSOLE_TILE_URL must be an http(s) URL template such as https://host/{z}/{x}/{y}.png")
        return value

    @field_validator("jwt_algorithm")
    @classmethod
    def _jwt_algorithm_is_allowed(cls, value: str) -> str:
        if value not in JWT_ALGORITHMS:
            raise ValueError(f"{value!r} is not allowed; use one of {', '.join(sorted(JWT_ALGORITHMS))}")
        return value

    @model_validator(mode="after")
    def _refuse_insecure_defaults(self) -> Settings:
        """Fail closed: config.fail_closed (docs/SECURITY.md §1)."""
        refuse_insecure(self)
        return self

    @property
    def is_production(self) -> bool:
        return self.environment is Environment.PRODUCTION

    @property
    def is_local_development(self) -> bool:
        """Development bound to loopback: the only place defaults and passwordless local services may run."""
        return self.environment is Environment.DEVELOPMENT and is_loopback(self.http_host)

    @property
    def docs_enabled(self) -> bool:
        return self.api_docs_enabled if self.api_docs_enabled is not None else not self.is_production

    @property
    def driver_token_ingest(self) -> bool:
        """Whether a driver's bearer token may post readings (devices always may, with their key)."""
        if self.ingest_driver_tokens is not None:
            return self.ingest_driver_tokens
        return self.environment is Environment.DEVELOPMENT

    @property
    def database_dsn(self) -> str:
        """What every PostgreSQL client connects with: DATABASE_URL plus DATABASE_SSLMODE / DATABASE_SSLROOTCERT."""
        return postgres_dsn(self.database_url, self.database_sslmode, self.database_sslrootcert)

    @property
    def database_name(self) -> str:
        return urlsplit(self.database_url).path.lstrip("/") or "postgres"

    def with_overrides(self, **changes: Any) -> Settings:
        """A validated copy with some fields changed (tests, per-run databases)."""
        return type(self).model_validate({**self.model_dump(), **changes})

    def portable_values(self) -> dict[str, Any]:
        """Every field as plain JSON values, secrets included: what another process (another build) validates back
        into its own Settings without importing this module's classes to unpickle them."""
        values = self.model_dump(mode="json")
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                values[name] = value.get_secret_value()
        return values

    def redacted(self) -> dict[str, Any]:
        """Every field, passwords and secrets masked: for `autoins config` and logs."""
        shown = self.model_dump(mode="json")
        shown["jwt_secret_key"] = "**********"
        shown["operator_token"] = None if self.operator_token is None else "**********"
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
    named = environ.get("ENVIRONMENT") or _read_key(root / ".env", "ENVIRONMENT")
    environment = named or "development"
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
        settings = Settings(_env_file=files or None, **{**from_environ, **overrides})
    except SettingsError:
        raise
    except ValueError as error:  # pydantic ValidationError: reduce to one line naming the key
        raise SettingsError(_one_line(error)) from None
    if not named and not is_loopback(settings.http_host):
        raise SettingsError(f"ENVIRONMENT: not set while HTTP_HOST={settings.http_host} is beyond loopback; "
                            "set ENVIRONMENT=development, staging or production explicitly")
    return settings


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
