"""The consumer's Kafka side: one confluent-kafka Consumer (static partition assignment) and a producer for the
DLQ and the log ticks, every call on one dedicated thread (the client is not thread-safe).

A plain class on purpose: Ray pickles actor methods by value, and confluent-kafka's C types cannot
be rebuilt that way; code referenced from here is imported normally in the worker.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor

from confluent_kafka import OFFSET_BEGINNING, Consumer, Message, TopicPartition

from domain.log_time import LOG_TICK_HEADER, encode_tick
from storage.kafka.clients import consumer_config
from storage.kafka.producer import ReadingProducer


class KafkaSource:
    def __init__(self, settings, index: int, count: int, log) -> None:
        self.settings = settings
        self.index = index
        self.count = count
        self.topic = settings.kafka_topic_events
        self.log = log
        self.thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"kafka-{index}")
        self.consumer: Consumer | None = None
        self.dlq: ReadingProducer | None = None
        self.partitions: list[int] = []
        self.positions: dict[int, int] = {}  # partition -> next offset this consumer will poll

    async def call(self, fn, *args):
        return await asyncio.get_running_loop().run_in_executor(self.thread, fn, *args)

    def open(self) -> list[int]:
        """Connect, find the topic's partitions, keep those with p % count == index."""
        self.consumer = Consumer(consumer_config(self.settings, **{"client.id": f"autoins-consumer-{self.index}"}))
        self.dlq = ReadingProducer(self.settings)
        metadata = self.consumer.list_topics(self.topic, timeout=30)
        topic = metadata.topics.get(self.topic)
        if topic is None or topic.error is not None or not topic.partitions:
            raise RuntimeError(f"topic {self.topic} does not exist (run `autoins topics`)")
        self.partitions = sorted(p for p in topic.partitions if p % self.count == self.index)
        return self.partitions

    def assign(self, offsets: dict[int, int]) -> None:
        """(Re)assign with explicit start offsets: also drops whatever was fetched but not consumed."""
        self.consumer.assign([TopicPartition(self.topic, p, offsets.get(p, OFFSET_BEGINNING)) for p in self.partitions])
        self.positions = {p: offsets.get(p, 0) for p in self.partitions}

    def poll(self, max_messages: int, linger_s: float, first_wait_s: float = 0.2) -> list[Message]:
        """Up to `max_messages`: what is already fetched at once; if nothing is, wait up to `first_wait_s` for
        the first message; then at most `linger_s` more to fill the batch. (`consume(n, timeout)` blocks until
        it has n messages or the timeout ends, so asking it for a full batch would hold a caught-up stream
        for the whole timeout.)"""
        out: list[Message] = list(self.consumer.consume(num_messages=max_messages, timeout=0))
        if not out and first_wait_s > 0:
            out = list(self.consumer.consume(num_messages=1, timeout=first_wait_s))
            if out and max_messages > 1:
                out.extend(self.consumer.consume(num_messages=max_messages - 1, timeout=0))
        deadline = time.monotonic() + linger_s
        while out and len(out) < max_messages:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            more = self.consumer.consume(num_messages=max_messages - len(out), timeout=remaining)
            if not more:
                break
            out.extend(more)
        good = []
        for message in out:
            if message.error() is not None:
                self.log.warning("kafka_message_error", error=str(message.error()))
                continue
            good.append(message)
            self.positions[message.partition()] = message.offset() + 1
        return good

    def commit(self, offsets: dict[int, int]) -> None:
        self.consumer.commit(offsets=[TopicPartition(self.topic, p, o) for p, o in offsets.items()], asynchronous=True)

    def send_dead_letters(self, dead_letters: list) -> None:
        """Produce and wait for delivery: offsets past a dead letter are stored only once it is in Kafka."""
        topic = self.settings.kafka_topic_dlq
        for letter in dead_letters:
            self.dlq.produce(topic, letter.value, letter.key, letter.headers)
        self.dlq.flush(30.0)

    def send_log_ticks(self, ticks: dict[int, int]) -> None:
        """One log tick record per partition (domain.log_time), each to its own partition; waits for delivery."""
        for partition, log_ms in sorted(ticks.items()):
            self.dlq.produce(self.topic, encode_tick(log_ms), None, [(LOG_TICK_HEADER, b"1")], partition=partition)
        self.dlq.flush(30.0)

    def lag(self, next_offsets: dict[int, int]) -> dict[int, int]:
        """High watermark from the last fetch (KAFKA_NOTES: ListOffsets is wrong on tansu) minus ours."""
        lag = {}
        for p in self.partitions:
            _low, high = self.consumer.get_watermark_offsets(TopicPartition(self.topic, p), cached=True)
            if high is not None and high >= 0:
                lag[p] = max(0, high - next_offsets.get(p, 0))
        return lag

    def backlog(self) -> int:
        """Messages past what this consumer has polled, summed over its partitions (fetch watermarks, as `lag`);
        what the adaptive batching sizes the next poll by. 0 for a partition not fetched yet."""
        total = 0
        for p in self.partitions:
            low, high = self.consumer.get_watermark_offsets(TopicPartition(self.topic, p), cached=True)
            if high is not None and high >= 0:
                total += max(0, high - max(low or 0, self.positions.get(p, 0)))
        return total

    def close(self) -> None:
        if self.consumer is not None:
            self.consumer.close()
            self.consumer = None
        if self.dlq is not None:
            self.dlq.close()
            self.dlq = None
