"""Consumer lag measured from outside the consumers: high watermark − the group's committed offset, per partition.

The high watermark comes from a fetch response (KAFKA_NOTES.md: ListOffsets reports wrong ends on tansu; the
watermark a fetch carries is right on tansu and Kafka alike). Each measurement opens a short-lived consumer that
never joins the group (assign, no subscribe, no commit), fetches one record just below the last known end of each
partition (or its end-of-partition event), reads the cached watermarks and closes: ~50 ms, a few bytes fetched.
The committed offsets are the group's in Kafka (the pipeline commits after each durable batch), so lag keeps
growing while a consumer is dead, which a consumer's own gauge cannot show.
"""

from __future__ import annotations

import time

from confluent_kafka import Consumer, TopicPartition

from config.settings import Settings
from storage.kafka.clients import consumer_config

FETCH_WAIT_S = 1.0


class WatermarkLag:
    """Blocking (run it in a thread). Remembers the last ends to fetch near them next time."""

    def __init__(self, settings: Settings, topic: str | None = None, group: str | None = None) -> None:
        self.settings = settings
        self.topic = topic or settings.kafka_topic_events
        self.group = group or settings.kafka_consumer_group
        self.ends: dict[int, int] = {}

    def measure(self) -> dict[int, int]:
        """{partition: messages not yet committed by the group}; raises KafkaException when Kafka is away."""
        consumer = Consumer(consumer_config(
            self.settings, self.group, **{"client.id": "autoins-lag-probe", "fetch.wait.max.ms": 10,
                                          "enable.partition.eof": True, "queued.min.messages": 1, "log_level": 2}))
        try:
            metadata = consumer.list_topics(self.topic, timeout=5)
            topic = metadata.topics.get(self.topic)
            if topic is None or topic.error is not None:
                return {}
            partitions = sorted(topic.partitions)
            consumer.assign([TopicPartition(self.topic, p, max(0, self.ends.get(p, 0) - 1)) for p in partitions])
            heard: set[int] = set()
            deadline = time.monotonic() + FETCH_WAIT_S
            while len(heard) < len(partitions) and time.monotonic() < deadline:
                heard.update(m.partition() for m in consumer.consume(len(partitions), timeout=0.05))
            for p in partitions:
                _low, high = consumer.get_watermark_offsets(TopicPartition(self.topic, p), cached=True)
                if high is not None and high >= 0:
                    self.ends[p] = high
            committed = {tp.partition: tp.offset for tp in
                         consumer.committed([TopicPartition(self.topic, p) for p in partitions], timeout=5)}
        finally:
            consumer.close()
        return {p: max(0, self.ends.get(p, 0) - max(0, committed.get(p, 0))) for p in partitions}
