"""`autoins dlq list|show|replay`: read the dead-letter topic with reasons; replay chosen records after a fix.

Replay sends each chosen record's original bytes and key back to the events topic. It is safe to repeat: a
reading's event id is in its bytes, and the event store inserts by event id (ON CONFLICT DO NOTHING), so a
reading replayed twice is stored once. A record still invalid is dead-lettered again by the pipeline with its
reason and an `x-dlq-replay-of` header; the DLQ itself is never changed.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, TypeVar

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeRemainingColumn
from rich.table import Table

from autoins.cli_support import console, settings_from_env, user_errors
from autoins.errors import UserFacingError
from config.settings import Settings
from domain import dead_letters as dl
from domain.validation import RejectReason
from storage.kafka.dlq import DlqUnavailable, dlq_partitions, read_dead_letters, replay
from storage.kafka.producer import ProduceError

dlq_app = typer.Typer(no_args_is_help=True)
T = TypeVar("T")
_REASONS = [r.value for r in RejectReason]


class BadArgument(UserFacingError):
    exit_code = 2


def _kafka(body: Callable[[], T]) -> T:
    """Run a Kafka call, turning the expected failures into one line."""
    try:
        return body()
    except DlqUnavailable as error:
        raise UserFacingError(str(error)) from None
    except ProduceError as error:
        raise UserFacingError(f"replay stopped: {error}") from None


def _read(settings: Settings) -> list[dl.DeadLetterRecord]:
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), console=console, transient=True) as progress:
        task = progress.add_task(f"reading {settings.kafka_topic_dlq}")
        return _kafka(lambda: read_dead_letters(
            settings, on_progress=lambda n: progress.update(task, description=f"read {n:,} dead letters")))


def _reasons(reasons: list[str] | None) -> set[str] | None:
    if not reasons:
        return None
    unknown = [r for r in reasons if r not in _REASONS]
    if unknown:
        raise BadArgument(f"unknown reason {', '.join(map(repr, unknown))}; reasons are: {', '.join(_REASONS)}")
    return set(reasons)


def _when(record: dl.DeadLetterRecord) -> str:
    if record.timestamp_ms is None:
        return "?"
    return datetime.fromtimestamp(record.timestamp_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")


@dlq_app.command("list")
@user_errors
def dlq_list(
    reason: Annotated[list[str] | None, typer.Option("--reason", help="Only this reason (repeatable).")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="Show at most this many (the newest).")] = 50,
) -> None:
    """Dead letters with their reasons, oldest first, and a count per reason."""
    settings = settings_from_env()
    wanted = _reasons(reason)
    records = dl.select(_read(settings), reasons=wanted)
    counts = Counter(r.reason for r in records)
    table = Table("position", "dead-lettered (UTC)", "reason", "field", "from", "message",
                  title=f"{settings.kafka_topic_dlq}: {len(records):,} dead letters"
                  + (f", showing the last {limit:,}" if len(records) > limit else ""))
    for record in records[-limit:]:
        origin = record.source or ""
        if record.header(dl.REPLAY_OF):
            origin += f" (replay of {record.header(dl.REPLAY_OF)})"
        message = (record.header(dl.MESSAGE) or "")[:80]
        table.add_row(f"{record.partition}:{record.offset}", _when(record), record.reason,
                      escape(record.header(dl.FIELD) or ""), escape(origin), escape(message))
    console.print(table)
    for name, count in counts.most_common():
        console.print(f"{name}: {count:,}", highlight=False)


@dlq_app.command("show")
@user_errors
def dlq_show(
    position: Annotated[str, typer.Argument(help="The dead letter's P:OFFSET (as `dlq list` shows it).")],
) -> None:
    """One dead letter in full: every header and the original value."""
    settings = settings_from_env()
    partitions = _kafka(lambda: dlq_partitions(settings))
    try:
        wanted = dl.parse_positions([position], partitions)
    except dl.SelectionError as error:
        raise BadArgument(str(error)) from None
    if len(wanted) != 1:
        raise BadArgument(f"{position!r} is a range: show takes one position")
    found = dl.select(_read(settings), positions=wanted)
    if not found:
        raise UserFacingError(f"no dead letter at {position} in {settings.kafka_topic_dlq}")
    record = found[0]
    table = Table("header", "value", title=f"{record.topic} {record.partition}:{record.offset}, {_when(record)} UTC")
    table.add_row("(key)", escape((record.key or b"").decode(errors="replace")))
    for name, value in record.headers:
        table.add_row(escape(name), escape(value.decode(errors="replace")))
    console.print(table)
    try:
        console.print_json(record.value.decode())
    except (UnicodeDecodeError, json.JSONDecodeError, ValueError):
        console.print(escape(repr(record.value[:4000])), highlight=False)


@dlq_app.command("replay")
@user_errors
def dlq_replay(
    offset: Annotated[list[str] | None, typer.Option(
        "--offset", help="P:OFFSET or P:FIRST-LAST of the DLQ (repeatable).")] = None,
    reason: Annotated[list[str] | None, typer.Option("--reason", help="Every dead letter with this reason.")] = None,
    replay_all: Annotated[bool, typer.Option("--all", help="Every dead letter.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would be replayed; send nothing.")] = False,
) -> None:
    """Send chosen dead letters back to the events topic (after fixing what refused them). Safe to repeat."""
    if replay_all and (offset or reason):
        raise BadArgument("--all replays everything: leave out --offset and --reason, or drop --all")
    if not (replay_all or offset or reason):
        raise BadArgument("say what to replay: --offset P:OFFSET, --reason REASON, or --all")
    settings = settings_from_env()
    reasons = _reasons(reason)
    positions = None
    if offset:
        partitions = _kafka(lambda: dlq_partitions(settings))
        try:
            positions = dl.parse_positions(offset, partitions)
        except dl.SelectionError as error:
            raise BadArgument(str(error)) from None
    records = _read(settings)
    if positions is not None:
        missing = dl.missing_positions(records, positions)
        if missing:
            shown = ", ".join(f"{p}:{o}" for p, o in missing[:10]) + (" …" if len(missing) > 10 else "")
            raise UserFacingError(f"no dead letter at {shown} in {settings.kafka_topic_dlq}: nothing was replayed")
    chosen = dl.select(records, positions=positions, reasons=reasons)
    if not chosen:
        raise UserFacingError(f"no dead letter in {settings.kafka_topic_dlq} matches: nothing was replayed")
    counts = ", ".join(f"{n} {c:,}" for n, c in Counter(r.reason for r in chosen).most_common())
    if dry_run:
        console.print(f"would replay {len(chosen):,} dead letters ({counts}) to {settings.kafka_topic_events}",
                      highlight=False)
        return
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeRemainingColumn(), console=console) as progress:
        task = progress.add_task(f"replaying to {settings.kafka_topic_events}", total=len(chosen))
        delivered = _kafka(lambda: replay(
            settings, chosen, on_progress=lambda n: progress.update(task, completed=n)))
    console.print(f"replayed {delivered:,} dead letters ({counts}) to {settings.kafka_topic_events}; "
                  "still-invalid ones return to the DLQ with their reason", highlight=False)
