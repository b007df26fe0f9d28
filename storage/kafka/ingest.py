"""The API's Kafka wrapper for ingest: produce a batch of encoded readings and wait for every delivery report.

One `ReadingProducer` per replica, used only from one dedicated thread (librdkafka's producer is not
thread-safe here and `flush` blocks), so the event loop never blocks; after a failed delivery a short breaker
answers at once instead of piling up waits. Any failure is `ProduceError` and nothing is claimed.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from concurrent.futures import ThreadPoolExecutor

from config.settings import Settings
from storage.kafka.producer import ProduceError, ReadingProducer

KAFKA_HEADER = "x-request-id"  # what actors/ingest_batch.py reads into domain_events.request_id
BREAKER_S = 1.0  # after a failed delivery, answer 503 at once for this long (no pile-up of 5 s waits)


class IngestProducer:
    """One `ReadingProducer` per replica, used only from one dedicated thread (it is not thread-safe and
    `flush` blocks); requests queue on that thread, so the event loop never blocks."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.timeout_s = settings.ingest_kafka_timeout_s
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ingest-kafka")
        self._producer: ReadingProducer | None = None
        self._failed_at = float("-inf")
        self.last_error: str | None = None

    async def deliver(self, payloads: list[bytes], keys: list[str], request_id: str) -> int:
        """Produce and wait for every delivery report; returns how many were acknowledged. Raises
        ProduceError when anything was not acknowledged within `ingest_kafka_timeout_s`."""
        if time.monotonic() - self._failed_at < BREAKER_S:
            raise ProduceError(f"Kafka failed moments ago: {self.last_error}")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._deliver, payloads, keys, request_id)

    def _deliver(self, payloads: list[bytes], keys: list[str], request_id: str) -> int:
        if self._producer is None:
            timeout_ms = int(self.timeout_s * 1000)
            self._producer = ReadingProducer(
                self.settings, max_block_s=self.timeout_s, log_level=3,
                # A message not acknowledged in time fails for good instead of landing after our 503.
                **{"message.timeout.ms": timeout_ms, "request.timeout.ms": min(timeout_ms, 30_000)},
            )
        try:
            self._producer.produce_many(payloads, keys, [(KAFKA_HEADER, request_id)])
            delivered = self._producer.flush(self.timeout_s + 1.0)
        except ProduceError as error:
            self._failed_at, self.last_error = time.monotonic(), str(error)
            # Drop what is still queued and start clean: the client retries the whole batch (event ids
            # make the replay idempotent downstream).
            self._producer.close()
            self._producer = None
            raise
        if delivered != len(payloads):  # cannot happen with one request at a time; never over-claim
            raise ProduceError(f"{delivered} of {len(payloads)} deliveries reported")
        return delivered

    async def close(self) -> None:
        def _close() -> None:
            if self._producer is not None:
                self._producer.flush(self.timeout_s)
                self._producer.close()
                self._producer = None

        with contextlib.suppress(ProduceError):
            await asyncio.get_running_loop().run_in_executor(self._executor, _close)
        self._executor.shutdown(wait=False)
