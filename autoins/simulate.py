"""`autoins simulate`: produce a simulated fleet's readings into Kafka, with its ground truth on disk.

The simulator (domain.simulator, pure) generates the stream; this edge reads the clock (the default
start), registers the drivers in PostgreSQL with their home timezone (the trip machine needs it for
night exposure), creates the topics, produces every batch keyed by driver id (one driver, one
partition, in order) and writes the truth table next to the other run data. Every expected failure
(bad option, Kafka or PostgreSQL unreachable, schema not migrated) is one line and exit 1.
"""

from __future__ import annotations

import csv
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import asyncpg
import numpy as np
import typer
from confluent_kafka import KafkaException
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from autoins.cli_support import console, run, settings_from_env, user_errors
from autoins.errors import UserFacingError
from config.rules import validation_rules
from config.settings import Settings
from domain.partition_calendar import retention_start_ms
from domain.rules import ValidationRules
from domain.simulator import DriverTruth, Population, driver_id, simulate, to_wire_json
from domain.simulator.realism import REALISM_MODES, RealismConfig
from domain.simulator.truth import TrueEpisode
from storage.kafka.clients import ensure_topics
from storage.kafka.producer import ProduceError, ReadingProducer
from storage.postgres.drivers import NewDriver, drivers_table_exists, insert_missing_drivers
from storage.postgres.pool import connect

# A trip is simulated whole when its ignition_on lies in the window, so its tail can pass the window's
# end: by at most the longest trip's time budget (docs/SIMULATOR.md §3: 150 km → 1.6·150/40 h + 15 min
# = 6.25 h) plus idling and a crash standstill. The default window ends this long before now, so every
# reading is in the past (validation refuses readings more than max_future_skew_s ahead).
TRIP_TAIL_ALLOWANCE_S = 7 * 3600
_UNITS_S = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86_400}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhd]?)")
_FIRST_NAMES = ("Ada", "Ben", "Chloé", "Dmitri", "Elena", "Farid", "Greta", "Hugo", "Inês", "Jonas",
                "Kasia", "Luca", "Maja", "Nikos", "Olga", "Pablo", "Rosa", "Sven", "Tereza", "Yusuf")
_LAST_NAMES = ("Almeida", "Becker", "Costa", "Dubois", "Evans", "Fischer", "García", "Hansen", "Ivanova",
               "Jensen", "Kowalski", "Laurent", "Martín", "Novak", "Okafor", "Papadopoulos", "Rossi",
               "Schmidt", "Taylor", "Weber")


def _clock_ms() -> int:
    """The wall clock, read once per run (tests replace it)."""
    return int(time.time() * 1000)


def parse_duration_s(text: str) -> float:
    """`3600`, `90s`, `30m`, `2h`, `1.5d` → seconds (> 0)."""
    match = _DURATION.fullmatch(text.strip().lower())
    seconds = float(match[1]) * _UNITS_S[match[2]] if match else 0.0
    if not seconds > 0:
        raise UserFacingError(f"--duration {text!r}: expected a positive number of seconds or a number with "
                              "s/m/h/d, like 3600, 30m, 2h, 1d")
    return seconds


def parse_start_ms(text: str | None, now_ms: int, duration_s: float) -> int:
    """None → the window ends TRIP_TAIL_ALLOWANCE_S before now; `now`, `now-2h` (relative to the clock);
    or ISO 8601 (`2026-01-05`, `2026-01-05T08:00:00+01:00`; no zone = UTC)."""
    if text is None:
        return now_ms - round((duration_s + TRIP_TAIL_ALLOWANCE_S) * 1000)
    value = text.strip().lower()
    if value == "now":
        return now_ms
    if value.startswith("now-"):
        return now_ms - round(parse_duration_s(value[4:]) * 1000)
    try:
        start = datetime.fromisoformat(text.strip())
    except ValueError:
        raise UserFacingError(
            f"--start {text!r}: expected ISO 8601 (2026-01-05T08:00:00Z), `now` or `now-2h`"
        ) from None
    if start.tzinfo is None:
        start = start.replace(tzinfo=UTC)
    return round(start.timestamp() * 1000)


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _check_window(start_ms: int, now_ms: int, rules: ValidationRules) -> None:
    oldest_ms = retention_start_ms(now_ms, rules.retention_months)
    if start_ms < oldest_ms:
        raise UserFacingError(f"--start {_iso(start_ms)} is before {_iso(oldest_ms)}, the oldest month the "
                              f"{rules.retention_months}-month retention keeps: validation would refuse those readings")
    if start_ms > now_ms + rules.max_future_skew_s * 1000:
        raise UserFacingError(f"--start {_iso(start_ms)} is in the future: validation would refuse those readings")


# -- PostgreSQL: the drivers read model (SQL in storage.postgres.drivers) --------------------------------------


async def register_drivers(settings: Settings, truth: list[DriverTruth]) -> int:
    """Insert the simulated drivers (timezone = the simulator's truth); returns how many were new."""
    url = settings.redacted()["database_url"]
    try:
        conn = await connect(settings, application_name="autoins-simulate")
    except asyncpg.InvalidCatalogNameError:
        raise UserFacingError(f"database {settings.database_name!r} does not exist at {url}: "
                              "run `autoins migrate --create-db`") from None
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
        raise UserFacingError(
            f"cannot connect to PostgreSQL at {url}: {_reason(error)}; run `autoins stack up`"
        ) from None
    try:
        if not await drivers_table_exists(conn):
            raise UserFacingError("table drivers does not exist: the schema is not migrated; run `autoins migrate`")
        created = await insert_missing_drivers(
            conn,
            [
                NewDriver(
                    driver_id=t.driver_id,
                    first_name=_FIRST_NAMES[t.driver_no % len(_FIRST_NAMES)],
                    last_name=_LAST_NAMES[t.driver_no // len(_FIRST_NAMES) % len(_LAST_NAMES)],
                    email=f"{t.driver_id}@example.test",
                    timezone=t.timezone,
                )
                for t in truth
            ],
        )
    except asyncpg.UniqueViolationError as error:
        raise UserFacingError(f"cannot register the simulated drivers: {_reason(error)} "
                              f"({error.constraint_name}); another driver already uses that email") from None
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
        raise UserFacingError(f"PostgreSQL: {_reason(error)}") from None
    finally:
        await conn.close()
    return created


def _reason(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _kafka_reason(error: KafkaException) -> str:
    first = error.args[0] if error.args else error
    return first.str() if hasattr(first, "str") else str(first)


# -- producing -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Produced:
    readings: int
    first_ts_ms: int | None
    last_ts_ms: int | None
    future_readings: int


def driver_keys(batch: np.ndarray) -> list[str]:
    """Each row's driver id: the Kafka key, so one driver's readings stay in one partition, in order."""
    numbers, inverse = np.unique(batch["driver_no"], return_inverse=True)
    names = np.array([driver_id(int(n)) for n in numbers.tolist()], dtype=object)
    return names[inverse].tolist()


def produce_stream(producer: ReadingProducer, population: Population, start_ms: int, duration_s: float, seed: int,
                   batch_size: int, rate: float | None, progress: Progress, *, max_future_skew_s: int,
                   realism: RealismConfig | None = None, episodes: list[TrueEpisode] | None = None) -> Produced:
    """Produce every batch; `rate` (readings/s) paces by sleeping between chunks of ~0.1 s of readings.
    `realism` picks a realism mode of the simulator; `episodes` collects the true harsh episodes."""
    end_ms = start_ms + round(duration_s * 1000)
    task = progress.add_task("simulated time", total=end_ms - start_ms, readings="0", per_s="")
    chunk = max(1, int(rate / 10)) if rate else batch_size
    started = time.monotonic()
    produced, future, first_ts, last_ts = 0, 0, None, None
    for batch in simulate(population, start_ms, duration_s, seed, batch_size=batch_size, realism=realism,
                          episodes=episodes):
        for lo in range(0, len(batch), chunk):
            part = batch[lo : lo + chunk]
            produced += producer.produce_many(to_wire_json(part), driver_keys(part))
            if rate:
                ahead_s = produced / rate - (time.monotonic() - started)
                if ahead_s > 0:
                    time.sleep(ahead_s)
        ts = batch["ts_ms"]
        first_ts = int(ts[0]) if first_ts is None else first_ts
        last_ts = int(ts[-1])
        # readings the validator would refuse as too far ahead of the clock (explicit recent --start)
        future += int(np.count_nonzero(ts > _clock_ms() + max_future_skew_s * 1000))
        elapsed = time.monotonic() - started
        progress.update(task, completed=min(last_ts, end_ms) - start_ms, readings=f"{produced:,}",
                        per_s=f"{produced / elapsed:,.0f}/s" if elapsed > 0 else "")
    progress.update(task, completed=end_ms - start_ms)
    return Produced(produced, first_ts, last_ts, future)


def parse_realism(text: str | None) -> RealismConfig | None:
    """`--realism`: None or `none` → the exact default stream; a mode name → its `RealismConfig`."""
    if text is None or text.strip().lower() == "none":
        return None
    mode = REALISM_MODES.get(text.strip().lower())
    if mode is None:
        raise UserFacingError(f"--realism {text!r}: expected one of none, {', '.join(REALISM_MODES)}")
    return mode


def write_episodes(path: Path, episodes: list[TrueEpisode]) -> None:
    """The true harsh episodes of the run (what a detector should find), one row each, time order."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["driver_id", "trip_no", "kind", "start_ms", "end_ms", "peak_mps2", "observed"])
        for e in sorted(episodes, key=lambda e: (e.start_ms, e.driver_no)):
            writer.writerow([e.driver_id, e.trip_no, e.kind, e.start_ms, e.end_ms, repr(e.peak_mps2), e.observed])


def write_truth(path: Path, truth: list[DriverTruth]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["driver_id", "latent_risk_z", "expected_claims_per_year", "timezone", "annual_km"])
        for t in truth:
            writer.writerow([t.driver_id, repr(t.latent_risk_z), repr(t.expected_claims_per_year), t.timezone,
                             repr(t.annual_km)])


@user_errors
def simulate_command(
    drivers: Annotated[int, typer.Option("--drivers", min=1, max=1_048_575, help="Number of simulated drivers.")],
    duration: Annotated[str, typer.Option("--duration", help="Simulated span: 3600 (s), 30m, 2h, 1d.")],
    rate: Annotated[float | None, typer.Option("--rate", min=0.001, help="Cap on readings/s (default: none).")] = None,
    seed: Annotated[int, typer.Option("--seed", min=0, help="Seed of the population and the stream.")] = 7,
    start: Annotated[str | None, typer.Option(
        "--start", help="ISO 8601 time, `now` or `now-2h`. Default: the span ends 7 h ago, so whole trips are past."
    )] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Readings per simulator batch.")] = 10_000,
    realism: Annotated[str | None, typer.Option(
        "--realism", help="`phone`: what a phone records (GNSS noise, random mounting axis, outages; "
        "docs/SIMULATOR.md §11). Default: the exact kinematics."
    )] = None,
) -> None:
    """Produce a simulated fleet's readings to the events topic; write its ground truth CSVs."""
    realism_config = parse_realism(realism)
    settings = settings_from_env()
    duration_s = parse_duration_s(duration)
    now_ms = _clock_ms()  # the edge reads the clock and passes time down
    start_ms = parse_start_ms(start, now_ms, duration_s)
    rules = validation_rules(settings)
    _check_window(start_ms, now_ms, rules)
    population = Population.generate(drivers, seed)
    truth = population.truth_table()

    new_drivers = run(register_drivers(settings, truth))
    try:
        ensure_topics(settings, timeout_s=5.0)
    except KafkaException as error:
        raise UserFacingError(f"cannot reach Kafka at {settings.kafka_bootstrap_servers}: {_kafka_reason(error)}; "
                              "run `autoins stack up`") from None

    producer = ReadingProducer(settings, log_level=2)  # a dead broker is reported once, by flush
    episodes: list[TrueEpisode] = []
    started = time.monotonic()
    try:
        with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[readings]} readings"),
                      TextColumn("{task.fields[per_s]}"), TimeElapsedColumn(), console=console) as progress:
            produced = produce_stream(producer, population, start_ms, duration_s, seed, batch_size, rate, progress,
                                      max_future_skew_s=rules.max_future_skew_s, realism=realism_config,
                                      episodes=episodes)
        producer.flush(60.0)  # readings/s below counts delivered (acknowledged) readings, not queued ones
        elapsed = max(time.monotonic() - started, 1e-9)
    except ProduceError as error:
        raise UserFacingError(str(error)) from None
    finally:
        producer.close()

    stem = f"{seed}-{drivers}" if realism_config is None else f"{seed}-{drivers}-{realism_config.name}"
    truth_path = settings.data_dir / "simulations" / f"{stem}.truth.csv"
    write_truth(truth_path, truth)
    episodes_path = settings.data_dir / "simulations" / f"{stem}.episodes.csv"
    write_episodes(episodes_path, episodes)
    span = (f"{_iso(produced.first_ts_ms)} → {_iso(produced.last_ts_ms)}" if produced.first_ts_ms is not None
            else "no readings")
    console.print(f"produced {produced.readings:,} readings to {settings.kafka_topic_events} "
                  f"in {elapsed:.1f} s ({produced.readings / elapsed:,.0f} readings/s)", highlight=False)
    console.print(f"drivers: {drivers:,} ({new_drivers:,} newly registered); trips starting in "
                  f"{_iso(start_ms)} → {_iso(start_ms + round(duration_s * 1000))}; readings {span}", highlight=False)
    if produced.future_readings:
        console.print(f"[yellow]warning:[/yellow] {produced.future_readings:,} readings lie more than "
                      f"{rules.max_future_skew_s} s ahead of the clock; validation will send them "
                      "to the DLQ (start earlier)", highlight=False)
    console.print(f"ground truth: {truth_path}", highlight=False)
    console.print(f"true harsh episodes: {episodes_path}", highlight=False)
