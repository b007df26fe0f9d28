"""Kafka readiness probe for the API: a metadata request with a short timeout (no produce, no topic writes)."""

from __future__ import annotations

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from config.settings import Settings
from storage.kafka.clients import admin_config


class KafkaUnavailable(Exception):
    """The broker did not answer metadata in time, or the events topic is missing."""


class KafkaProbe:
    """One admin client per replica, created on first use. `check` blocks: call it from a thread."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._admin: AdminClient | None = None

    def check(self, timeout_s: float) -> None:
        if self._admin is None:
            self._admin = AdminClient(admin_config(self.settings))
        try:
            topics = self._admin.list_topics(timeout=timeout_s).topics
        except KafkaException as error:
            first = error.args[0] if error.args else error
            reason = first.str() if hasattr(first, "str") else str(first)
            raise KafkaUnavailable(f"no metadata from {self.settings.kafka_bootstrap_servers}: {reason}") from None
        if self.settings.kafka_topic_events not in topics:
            raise KafkaUnavailable(f"topic {self.settings.kafka_topic_events} does not exist (run `autoins topics`)")
