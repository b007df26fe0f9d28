"""Kafka client configuration (confluent-kafka) and topic creation. The one place that knows
librdkafka's option names; the consumer and producer wrappers take their config from here.
"""

from __future__ import annotations

from typing import Any

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from config.settings import Settings


def security_config(settings: Settings) -> dict[str, Any]:
    """TLS and SASL options, part of every client's config (producer, consumers, DLQ, admin): one home, so no
    client of the system can talk to the broker in plaintext while the others use TLS (docs/SECURITY.md §7)."""
    config: dict[str, Any] = {"security.protocol": settings.kafka_security_protocol}
    if settings.kafka_ssl_ca_location is not None:
        config["ssl.ca.location"] = str(settings.kafka_ssl_ca_location)
    if settings.kafka_security_protocol.startswith("SASL_"):
        assert settings.kafka_sasl_password is not None  # Settings refuses SASL without it
        config |= {"sasl.mechanism": settings.kafka_sasl_mechanism, "sasl.username": settings.kafka_sasl_username,
                   "sasl.password": settings.kafka_sasl_password.get_secret_value()}
    return config


def producer_config(settings: Settings, **extra: Any) -> dict[str, Any]:
    """Idempotent producer: retries cannot duplicate or reorder within a partition."""
    return {
        "bootstrap.servers": settings.kafka_bootstrap_servers,
        **security_config(settings),
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 5,
        "batch.num.messages": 10_000,
        "compression.type": "lz4",
        "message.max.bytes": settings.kafka_max_message_bytes,
        "queue.buffering.max.messages": 500_000,
        **extra,
    }


def consumer_config(settings: Settings, group_id: str | None = None, **extra: Any) -> dict[str, Any]:
    """Offsets are ours: auto-commit off, we commit after the batch is durable in PostgreSQL."""
    return {
        "bootstrap.servers": settings.kafka_bootstrap_servers,
        **security_config(settings),
        "group.id": group_id or settings.kafka_consumer_group,
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "session.timeout.ms": settings.kafka_session_timeout_ms,  # KAFKA_NOTES: slow join otherwise
        "heartbeat.interval.ms": max(500, settings.kafka_session_timeout_ms // 3),
        "fetch.max.bytes": max(settings.kafka_max_message_bytes, 52_428_800),
        "max.partition.fetch.bytes": settings.kafka_max_message_bytes,
        "fetch.wait.max.ms": settings.kafka_fetch_wait_max_ms,  # KAFKA_NOTES: a caught-up consumer's latency
        "partition.assignment.strategy": "cooperative-sticky",
        **extra,
    }


def admin_config(settings: Settings, **extra: Any) -> dict[str, Any]:
    """Short-lived admin clients (CLI, tests): an unreachable broker is reported once by the caller,
    not as a connect-failure line every 50 ms from librdkafka (log_level 2 keeps only CRIT and up)."""
    return {"bootstrap.servers": settings.kafka_bootstrap_servers, **security_config(settings), "log_level": 2,
            **extra}


def ensure_topics(settings: Settings, timeout_s: float = 10.0) -> list[str]:
    """Create the events topic (configured partitions) and its DLQ if missing; names created."""
    admin = AdminClient(admin_config(settings))
    wanted = {
        settings.kafka_topic_events: settings.kafka_partitions,
        settings.kafka_topic_dlq: max(1, min(settings.kafka_partitions, 4)),
    }
    existing = set(admin.list_topics(timeout=timeout_s).topics)
    missing = [
        NewTopic(name, num_partitions=partitions, replication_factor=settings.kafka_replication_factor,
                 config={"max.message.bytes": str(settings.kafka_max_message_bytes)})
        for name, partitions in wanted.items()
        if name not in existing
    ]
    created: list[str] = []
    for name, future in admin.create_topics(missing, operation_timeout=timeout_s).items() if missing else ():
        try:
            future.result(timeout=timeout_s)
            created.append(name)
        except KafkaException as error:
            if error.args and getattr(error.args[0], "name", lambda: "")() == "TOPIC_ALREADY_EXISTS":
                continue
            raise
    return created
