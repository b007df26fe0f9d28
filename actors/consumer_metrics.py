"""The IngestConsumer's Prometheus families (plan §5.1, §5.2), recorded with ray.util.metrics: each node's
agent exports them (as `ray_kafka_*`) and the API's /metrics merges every node (docs/OPERATIONS.md).

Tags are topic, partition, consumer group and consumer index: bounded by the topic's partition count and the
consumer count, never per driver. `kafka_consumer_lag` is not here: the supervisor measures it from outside
(actors/pipeline_metrics.py), so it keeps growing while a consumer is dead.
"""

from __future__ import annotations

from ray.util.metrics import Counter, Gauge, Histogram

BATCH_SECONDS_BOUNDARIES = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0]


class ConsumerMetrics:
    def __init__(self, topic: str, group: str, consumer: int = 0) -> None:
        self.topic, self.group, self.consumer = topic, group, str(consumer)
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
        self.trips_ended = Counter("trips_ended", description="Trips stored as ended (first insert only: a replayed "
                                   "batch adds nothing); Ray adds _total", tag_keys=("topic",))
        self._batch_target: int | None = None

    def durable(self, valid: int, batch_s: float, trips_ended: int = 0) -> None:
        if valid:
            self.processed.inc(valid, tags={"topic": self.topic, "status": "valid"})
        if trips_ended:
            self.trips_ended.inc(trips_ended, tags={"topic": self.topic})
        self.batch_seconds.observe(batch_s, tags={"topic": self.topic})

    def dead_lettered(self, count: int) -> None:
        if count:
            self.processed.inc(count, tags={"topic": self.topic, "status": "dlq"})

    def batch_target(self, max_messages: int) -> None:
        if max_messages != self._batch_target:  # it moves with every backlog change: record changes only
            self._batch_target = max_messages
            self.batch_target_gauge.set(max_messages, tags={"topic": self.topic, "consumer": self.consumer})

