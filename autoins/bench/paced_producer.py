"""The steady-state bench's producer: the simulated fleet's stream at a fixed rate for a fixed time, in a
process of its own, with probe readings whose device time is the wall clock when they were produced.

A process, not a thread: the simulator and the Kafka client would share the GIL with the bench's WebSocket
clients and delay the very receive times being measured, and the bench's sampling would jitter the pace.
Pacing is `autoins simulate --rate`'s (sleep until the produced count is due) in 10 ms chunks, so the broker
sees a stream, not a burst every 0.1 s. A probe's `ts` (epoch ms) is stamped just before it is queued; it
comes back unchanged in the driver's WebSocket `position` message, so receive time − `ts_ms` is the whole
event → WebSocket delay (producer linger included, as for any device reading).
"""

from __future__ import annotations

import multiprocessing
import time
import uuid
from dataclasses import dataclass

import msgspec

from autoins.bench.preload import window_for
from autoins.simulate import driver_keys
from config.rules import validation_rules
from config.settings import Settings
from domain.simulator import Population, simulate, to_wire_json
from storage.kafka.producer import ReadingProducer

TICK_S = 0.01  # one chunk of readings per 10 ms
PROBE_NAMESPACE = uuid.UUID("0b4b1d7e-8a43-5c3c-9f3e-6c1c2f5a1e01")  # probe event ids: uuid5 of driver and number
_ENCODE = msgspec.json.Encoder().encode


@dataclass(frozen=True)
class PacedPlan:
    """What the producer process produces: `rate` simulated readings/s for `duration_s`, plus one probe per
    probe driver every `probe_interval_s` (staggered)."""

    settings: Settings
    drivers: int
    seed: int
    rate: float
    duration_s: float
    probe_drivers: tuple[str, ...]
    probe_interval_s: float
    now_ms: int

    @property
    def readings(self) -> int:
        return round(self.rate * self.duration_s)


@dataclass(frozen=True)
class PacedResult:
    readings: int
    probes: int
    started_at: float  # wall clock of the first produce
    ended_at: float  # wall clock of the last produce
    error: str | None = None
    probe_ts_ms: tuple[int, ...] = ()  # each probe's stamp, in order


def probe_payload(driver_id: str, number: int, ts_ms: int) -> bytes:
    """A valid standing-still position whose `ts` is the wall clock at production."""
    return _ENCODE({
        "event_id": str(uuid.uuid5(PROBE_NAMESPACE, f"{driver_id}/{number}")), "driver_id": driver_id,
        "ts": ts_ms, "type": "position", "lat": 52.52, "lon": 13.405, "speed_kmh": 0.0, "accel_ms2": 0.0,
        "heading": 0.0, "speed_limit_kmh": None,
    })


class PacedProducer:
    """The parent's handle on the producer process: start it, watch its counters, collect its result."""

    def __init__(self, plan: PacedPlan) -> None:
        ctx = multiprocessing.get_context("spawn")  # never fork a process that runs Ray's threads
        self.produced = ctx.Value("q", 0)
        self.producing = ctx.Event()
        self.finished = ctx.Event()
        self._results, child_end = ctx.Pipe(duplex=False)
        self.process = ctx.Process(target=_main, args=(plan, self.produced, self.producing, self.finished, child_end),
                                   name="autoins-bench-producer", daemon=True)

    def start(self) -> None:
        self.process.start()

    @property
    def pid(self) -> int | None:
        return self.process.pid

    def result(self, timeout_s: float) -> PacedResult:
        if not self._results.poll(timeout_s):
            raise TimeoutError(f"the producer process sent no result in {timeout_s:.0f} s")
        result = self._results.recv()
        self.process.join(10)
        return result

    def stop(self) -> None:
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(10)


def _main(plan: PacedPlan, produced, producing, finished, results) -> None:
    try:
        results.send(produce_paced(plan, produced, producing))
    except Exception as error:  # reported to the parent, which fails the run with it
        results.send(PacedResult(produced.value, 0, 0.0, 0.0, error=repr(error)[:300]))
    finally:
        finished.set()


def produce_paced(plan: PacedPlan, produced, producing) -> PacedResult:
    """Produce `plan.readings` readings at `plan.rate` per second (and the probes), then wait for delivery."""
    population = Population.generate(plan.drivers, plan.seed)
    start_ms, window_s = window_for(plan.readings, plan.drivers, plan.now_ms, validation_rules(plan.settings))
    producer = ReadingProducer(plan.settings, log_level=2)
    chunk = max(1, round(plan.rate * TICK_S))
    probe_every_s = plan.probe_interval_s / max(1, len(plan.probe_drivers))
    count = probes = 0
    stamps: list[int] = []
    try:
        stream = simulate(population, start_ms, window_s, plan.seed, batch_size=10_000)
        first = next(stream)  # the simulator's first batch before the clock starts
        started = time.monotonic()
        started_at = time.time()
        producing.set()
        next_probe = started
        for batch in _chain(first, stream):
            for lo in range(0, len(batch), chunk):
                part = batch[lo: min(lo + chunk, lo + plan.readings - count)]
                count += producer.produce_many(to_wire_json(part), driver_keys(part))
                produced.value = count
                while plan.probe_drivers and time.monotonic() >= next_probe:
                    driver = plan.probe_drivers[probes % len(plan.probe_drivers)]
                    stamps.append(int(time.time() * 1000))
                    payload = probe_payload(driver, probes, stamps[-1])
                    producer.produce(plan.settings.kafka_topic_events, payload, driver)
                    probes += 1
                    next_probe += probe_every_s
                if count >= plan.readings:
                    break
                ahead_s = count / plan.rate - (time.monotonic() - started)
                if ahead_s > 0:
                    time.sleep(ahead_s)
            if count >= plan.readings:
                break
        ended_at = time.time()
        producer.flush(60.0)
    finally:
        producer.close()
    if count < plan.readings:
        raise RuntimeError(f"the simulator gave only {count:,} readings: use more --drivers")
    return PacedResult(count, probes, started_at, ended_at, probe_ts_ms=tuple(stamps))


def _chain(first, rest):
    yield first
    yield from rest
