"""Reading the dead-letter topic back and replaying records to the events topic (`autoins dlq`).

The reader assigns every partition of the DLQ from the beginning under a throwaway group id and never
commits: reading the DLQ changes nothing. It stops when librdkafka reported the end of every partition
(`enable.partition.eof`: the high watermark of a fetch response, which is right on tansu, unlike ListOffsets:
KAFKA_NOTES), or when nothing at all arrived for `idle_s`.
Replay produces with the project's idempotent producer and waits for every delivery before returning.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Message, TopicPartition

from config.settings import Settings
from domain.dead_letters import DeadLetterRecord, replay_headers
from storage.kafka.clients import consumer_config
from storage.kafka.producer import ReadingProducer

Progress = Callable[[int], None]  # records done so far


class DlqUnavailable(Exception):
    """The DLQ topic cannot be read (broker away, topic missing); the message says which."""


def dlq_partitions(settings: Settings, timeout_s: float = 5.0) -> int:
    consumer = _consumer(settings)
    try:
        return len(_partitions(consumer, settings, timeout_s))
    finally:
        consumer.close()


def read_dead_letters(
    settings: Settings, *, idle_s: float = 5.0, timeout_s: float = 5.0, on_progress: Progress | None = None
) -> list[DeadLetterRecord]:
    """Every record of `settings.kafka_topic_dlq`, in (partition, offset) order."""
    topic = settings.kafka_topic_dlq
    consumer = _consumer(settings)
    records: list[DeadLetterRecord] = []
    try:
        partitions = _partitions(consumer, settings, timeout_s)
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        at_end: set[int] = set()
        quiet_since = time.monotonic()
        while len(at_end) < len(partitions) and time.monotonic() - quiet_since < idle_s:
            batch = consumer.consume(num_messages=5_000, timeout=0.2)
            for message in batch:
                error = message.error()
                if error is not None:
                    # librdkafka's end-of-partition event: the offset reached the high watermark of a fetch
                    if error.code() == KafkaError._PARTITION_EOF:
                        at_end.add(message.partition())
                    continue
                at_end.discard(message.partition())
                records.append(_record(topic, message))
            if batch:
                quiet_since = time.monotonic()
                if on_progress is not None:
                    on_progress(len(records))
    finally:
        consumer.close()
    return sorted(records, key=lambda r: r.position)


def _record(topic: str, message: Message) -> DeadLetterRecord:
    _ts_type, ts = message.timestamp()
    return DeadLetterRecord(
        topic=topic, partition=message.partition(), offset=message.offset(),
        timestamp_ms=ts if ts and ts > 0 else None, key=message.key(), value=message.value() or b"",
        headers=tuple((k, v or b"") for k, v in message.headers() or ()),
    )


def replay(
    settings: Settings, records: Sequence[DeadLetterRecord], *, on_progress: Progress | None = None,
    flush_every: int = 1_000,
) -> int:
    """Produce each record's original value and key to the events topic with `replay_headers`; returns how many
    Kafka acknowledged. Raises ProduceError when any was not delivered (the DLQ is never changed)."""
    producer = ReadingProducer(settings, log_level=2)
    delivered = 0
    try:
        for i, record in enumerate(records, 1):
            producer.produce(settings.kafka_topic_events, record.value, record.key, replay_headers(record))
            if i % flush_every == 0 or i == len(records):
                delivered += producer.flush(60.0)
                if on_progress is not None:
                    on_progress(i)
    finally:
        producer.close()
    return delivered


def _consumer(settings: Settings) -> Consumer:
    config = consumer_config(settings, group_id=f"autoins-dlq-reader-{uuid.uuid4().hex[:8]}", log_level=2,
                             **{"enable.partition.eof": True})
    return Consumer(config)


def _partitions(consumer: Consumer, settings: Settings, timeout_s: float) -> list[int]:
    topic, servers = settings.kafka_topic_dlq, settings.kafka_bootstrap_servers
    try:
        metadata = consumer.list_topics(topic, timeout=timeout_s)
    except Exception as error:  # KafkaException: broker unreachable within the timeout
        raise DlqUnavailable(f"cannot read {topic} from Kafka at {servers}: {error}; "
                             "run `autoins stack up`") from None
    found = metadata.topics.get(topic)
    if found is None or found.error is not None or not found.partitions:
        raise DlqUnavailable(f"topic {topic} does not exist on Kafka at {servers}: "
                             "run `autoins topics`")
    return sorted(found.partitions)
