"""The one Kafka producer wrapper (confluent-kafka): readings from the simulator and the API, DLQ records.

Config comes from `storage.kafka.clients.producer_config` (idempotent, acks=all), so a retried send can neither
duplicate nor reorder a partition. Producing is asynchronous: `produce*` only queues; delivery is
known after `flush`, which raises `ProduceError` if anything failed or is still undelivered. Callbacks
(delivery reports, client errors) run inside `poll`/`flush` on the caller's thread, so the counters
need no lock. Not thread-safe; one per thread or actor.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from confluent_kafka import KafkaError, Message, Producer

from config.settings import Settings
from storage.kafka.clients import producer_config

Headers = Sequence[tuple[str, str | bytes]] | Mapping[str, str | bytes]
_POLL_EVERY = 1_000  # serve delivery reports this often while queueing, so the local queue drains


def _headers(headers: Headers | None) -> list[tuple[str, str | bytes]] | dict[str, str | bytes] | None:
    # librdkafka takes a list or a dict; anything else (a tuple) is copied into a list
    if not headers:
        return None
    if isinstance(headers, Mapping):
        return dict(headers)
    return headers if isinstance(headers, list) else list(headers)


class ProduceError(Exception):
    """Messages that did not reach Kafka: how many, where, and the first reason."""


class ReadingProducer:
    """Produces to `settings.kafka_topic_events` by default; `produce` takes any topic (DLQ).

    `config` overrides librdkafka options (e.g. `log_level=2` in CLIs to keep connection errors off
    stderr: they are reported once, by `flush`). `max_block_s` bounds how long `produce*` waits for
    room when the local queue is full (the broker is slow or away) before raising `ProduceError`.
    """

    def __init__(self, settings: Settings, *, max_block_s: float = 30.0, **config: Any) -> None:
        self.topic = settings.kafka_topic_events
        self.bootstrap_servers = settings.kafka_bootstrap_servers
        self.max_block_s = max_block_s
        self._delivered = 0
        self._failed = 0
        self._first_failure: str | None = None
        self._last_error: str | None = None
        self._producer = Producer(
            producer_config(settings, on_delivery=self._on_delivery, error_cb=self._on_error, **config)
        )

    # -- callbacks (run inside poll/flush) ---------------------------------------------------------

    def _on_delivery(self, error: KafkaError | None, message: Message) -> None:
        if error is None:
            self._delivered += 1
            return
        self._failed += 1
        if self._first_failure is None:
            self._first_failure = f"{error.str()} (topic {message.topic()})"

    def _on_error(self, error: KafkaError) -> None:
        self._last_error = error.str()

    # -- producing ---------------------------------------------------------------------------------

    def produce_many(
        self, payloads: Sequence[bytes], keys: Sequence[bytes | str], headers: Headers | None = None,
        *, topic: str | None = None,
    ) -> int:
        """Queue one message per payload, keyed (key = driver_id keeps a driver's readings in one
        partition, in this order); the same `headers` on each. Returns the number queued."""
        if len(payloads) != len(keys):
            raise ValueError(f"{len(payloads)} payloads but {len(keys)} keys")
        topic = topic or self.topic
        produce, poll = self._producer.produce, self._producer.poll
        hdrs = _headers(headers)
        for i, (value, key) in enumerate(zip(payloads, keys, strict=True)):
            try:
                produce(topic, value, key, headers=hdrs)
            except BufferError:
                self._wait_for_room(lambda v=value, k=key: produce(topic, v, k, headers=hdrs))
            if i % _POLL_EVERY == _POLL_EVERY - 1:
                poll(0)
        poll(0)
        return len(payloads)

    def produce(self, topic: str, value: bytes | None, key: bytes | str | None = None,
                headers: Headers | None = None, partition: int | None = None) -> None:
        """Queue one message to any topic (DLQ records, single API readings, log ticks to one partition)."""
        hdrs = _headers(headers)
        where = {} if partition is None else {"partition": partition}
        try:
            self._producer.produce(topic, value, key, headers=hdrs, **where)
        except BufferError:
            self._wait_for_room(lambda: self._producer.produce(topic, value, key, headers=hdrs, **where))
        self._producer.poll(0)

    def _wait_for_room(self, retry: Any) -> None:
        deadline = time.monotonic() + self.max_block_s
        while True:
            self._producer.poll(0.05)  # delivery reports free queue slots
            try:
                retry()
                return
            except BufferError:
                if time.monotonic() > deadline:
                    raise ProduceError(
                        f"Kafka at {self.bootstrap_servers} did not take messages for {self.max_block_s:g} s "
                        f"({len(self._producer)} queued){self._reason()}"
                    ) from None

    # -- delivery ----------------------------------------------------------------------------------

    @property
    def pending(self) -> int:
        """Messages queued or in flight, not yet reported."""
        return len(self._producer)

    def poll(self, timeout_s: float = 0.0) -> int:
        """Serve delivery reports; returns how many callbacks ran."""
        return self._producer.poll(timeout_s)

    def flush(self, timeout_s: float = 30.0) -> int:
        """Wait up to `timeout_s` for every queued message. Returns how many were delivered since the
        previous flush; raises `ProduceError` if any delivery failed (counters then reset) or messages
        are still undelivered (they stay queued: flush again, or `close` to drop them)."""
        remaining = self._producer.flush(timeout_s)
        delivered, failed, first_failure = self._delivered, self._failed, self._first_failure
        if failed:
            self._delivered, self._failed, self._first_failure = 0, 0, None
            raise ProduceError(
                f"{failed} message(s) failed delivery to Kafka at {self.bootstrap_servers}: {first_failure}"
            )
        if remaining:
            raise ProduceError(
                f"{remaining} message(s) still undelivered after {timeout_s:g} s to Kafka at "
                f"{self.bootstrap_servers}{self._reason()}"
            )
        self._delivered = 0
        return delivered

    def _reason(self) -> str:
        return f": {self._last_error}" if self._last_error else ""

    def close(self) -> int:
        """Drop whatever is still queued (call `flush` first to deliver it) and release the client.
        Never blocks on an unreachable broker. Returns the number of messages dropped."""
        dropped = len(self._producer)
        if dropped:
            self._producer.purge(in_queue=True, in_flight=True, blocking=False)
            self._producer.flush(0)  # serve the purge reports
        self._producer.close()
        return dropped

    def __enter__(self) -> ReadingProducer:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
