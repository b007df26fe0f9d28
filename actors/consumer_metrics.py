"""The IngestConsumer's Prometheus families (plan §5.1, §5.2), recorded with ray.util.metrics: each node's
agent exports them (as `ray_kafka_*`) and the API's /metrics merges every node (docs/OPERATIONS.md).

Tags are topic, partition, consumer group and consumer index: bounded by the topic's partition count and the
consumer count, never per driver.
"""

from __future__ import annotations

import time

from ray.util.metrics import Counter, Gauge, Histogram

BATCH_SECONDS_BOUNDARIES = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0]
LAG_EVERY_S = 5.0  # lag comes from cached fetch watermarks (KAFKA_NOTES), but there is no need to do it per batch


class ConsumerMetrics:
    def __init__(self, topic: str, group: str, consumer: int = 0) -> None:
        self.topic, self.group, self.consumer = topic, group, str(consumer)
        self.lag = Gauge("kafka_consumer_lag", description="Messages behind the high watermark, per partition",
                         tag_keys=("topic", "partition", "consumer_group"))
        self.processed = Counter("kafka_messages_processed", description="Messages made durable (valid) or "
                                 "dead-lettered (dlq); Ray adds _total", tag_keys=("topic", "status"))
        self.batch_seconds = Histogram(
            "kafka_message_processing_seconds", description="Poll to durable ack of one consumer batch",
            boundaries=BATCH_SECONDS_BOUNDARIES, tag_keys=("topic",),
        )
        self.batch_target_gauge = Gauge(
            "kafka_consumer_batch_target", description="Messages the consumer's next poll asks for at most "
            "(adaptive batching: small when caught up, up to CONSUMER_BATCH_SIZE when behind)",
            tag_keys=("topic", "consumer"),
        )
        self._lag_at = float("-inf")
        self._batch_target: int | None = None

    def durable(self, valid: int, batch_s: float) -> None:
        if valid:
            self.processed.inc(valid, tags={"topic": self.topic, "status": "valid"})
        self.batch_seconds.observe(batch_s, tags={"topic": self.topic})

    def dead_lettered(self, count: int) -> None:
        if count:
            self.processed.inc(count, tags={"topic": self.topic, "status": "dlq"})

    def batch_target(self, max_messages: int) -> None:
        if max_messages != self._batch_target:  # it moves with every backlog change: record changes only
            self._batch_target = max_messages
            self.batch_target_gauge.set(max_messages, tags={"topic": self.topic, "consumer": self.consumer})

    def lag_due(self) -> bool:
        now = time.monotonic()
        if now - self._lag_at < LAG_EVERY_S:
            return False
        self._lag_at = now
        return True

    def set_lag(self, lag: dict[int, int]) -> None:
        for partition, behind in lag.items():
            self.lag.set(behind, tags={"topic": self.topic, "partition": str(partition), "consumer_group": self.group})
