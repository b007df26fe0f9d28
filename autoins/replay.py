"""`autoins replay FILE`: post a JSON-lines file of readings through the public API, wait for the pipeline, print
the trips the readings fall in and their episodes.

The edge: it reads the file, logs in, draws the progress bar and the tables. What is posted, counted and waited
for is `usecases.replay.Replay` over `storage.http.telematics_api.HttpTelematicsApi`. Every expected failure (no
such file, an unreadable one, no login given, a refused login, the API down) is one line and exit 1.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from autoins.cli_support import console, settings_from_env, user_errors
from autoins.errors import UserFacingError
from config.endpoints import api_base_url
from config.rules import validation_rules
from storage.http.telematics_api import IMPORT, INGEST, HttpTelematicsApi
from usecases.ports.clock import SystemClock
from usecases.ports.telematics_api import ApiRefused, ApiUnavailable
from usecases.replay import Replay, ReplayReport, ReplayTerms

SHOWN_BAD_LINES = 20
SHOWN_LINE_NUMBERS = 10
RUNNING_HINT = "is the system running? (`autoins serve` or `autoins deploy`; `autoins status`)"


@user_errors
def replay_command(
    file: Annotated[Path, typer.Argument(
        help="JSON lines: one reading per line, the objects POST /api/v1/telematics/events takes.")],
    username: Annotated[str | None, typer.Option(
        "--username", "-u", envvar="AUTOINS_API_USERNAME", help="Log in as this user (a driver posts their own).")
    ] = None,
    password: Annotated[str | None, typer.Option(
        "--password", envvar="AUTOINS_API_PASSWORD", help="The user's password; asked for when missing.")] = None,
    token: Annotated[str | None, typer.Option(
        "--token", envvar="AUTOINS_API_TOKEN", help="A bearer token instead of --username/--password.")] = None,
    api_url: Annotated[str | None, typer.Option(
        "--api-url", help="The API's base URL. Default: http_host:http_port of the settings.")] = None,
    batch_size: Annotated[int | None, typer.Option(
        "--batch-size", min=1, help="Readings per request. Default and most: the setting ingest_max_readings.")
    ] = None,
    timeout: Annotated[float, typer.Option(
        "--timeout", min=0, help="Seconds to wait at most for the pipeline's trips after the last batch.")] = 60.0,
    import_: Annotated[bool, typer.Option(
        "--import", help="Post through the admin import (an admin login): readings older than the ingest route's "
        "window (INGEST_MAX_BACKDATE_S) are taken too, within retention.")] = False,
    settle: Annotated[float | None, typer.Option(
        "--settle", min=0, help="Done waiting once the trips found did not change for this many seconds. Default: "
        "the setting log_tick_idle_s + 10 (an idle partition's last trip ends once a log tick passes it).")] = None,
) -> None:
    """Post a JSON-lines file of readings through the API; show the trips they fall in and their episodes."""
    settings = settings_from_env()
    size = batch_size or settings.ingest_max_readings
    if size > settings.ingest_max_readings:
        raise UserFacingError(f"--batch-size {size}: the API takes at most {settings.ingest_max_readings} readings "
                              "per request (setting ingest_max_readings)")
    if token is None and username is None:
        raise UserFacingError("say who posts the readings: --username (and --password) or --token "
                              "(or AUTOINS_API_USERNAME / AUTOINS_API_PASSWORD / AUTOINS_API_TOKEN)")
    lines = count_lines(file)
    if lines == 0:
        raise UserFacingError(f"{file} holds no readings (no line that is not blank)")
    if token is None and password is None:
        password = typer.prompt(f"password of {username}", hide_input=True)
    base_url = (api_url or api_base_url(settings)).rstrip("/")
    if settle is None:
        settle = settings.log_tick_idle_s + 10.0
    terms = ReplayTerms(batch_size=size, timeout_s=max(timeout, settle), settle_s=settle,
                        rules=validation_rules(settings))
    ingest_path = IMPORT if import_ else INGEST
    report = asyncio.run(_replay(file, lines, base_url, username, password, token, terms, ingest_path))
    print_report(report, terms, settings.log_tick_idle_s)
    if report.accepted == 0:
        raise typer.Exit(1)


async def _replay(file: Path, lines: int, base_url: str, username: str | None, password: str | None,
                  token: str | None, terms: ReplayTerms, ingest_path: str = INGEST) -> ReplayReport:
    try:
        if token is not None:
            api = HttpTelematicsApi(base_url, token, ingest_path=ingest_path)
        else:
            assert username is not None and password is not None
            api = await HttpTelematicsApi.login(base_url, username, password, ingest_path=ingest_path)
        try:
            with Progress(TextColumn("posting"), BarColumn(), MofNCompleteColumn(), TextColumn("lines"),
                          TimeElapsedColumn(), console=console) as progress:
                task = progress.add_task("lines", total=lines)
                replay = Replay(api, SystemClock(), terms)
                posted = await replay.run(read_lines(file), lambda n: progress.advance(task, n))
            return posted
        finally:
            await api.aclose()
    except ApiUnavailable as error:
        raise UserFacingError(f"{error}; {RUNNING_HINT}") from None
    except ApiRefused as error:
        raise UserFacingError(str(error)) from None
    except OSError as error:
        raise UserFacingError(f"cannot read {file}: {error.strerror or error}") from None


def count_lines(file: Path) -> int:
    """Lines that are not blank (the progress bar's total); a missing or unreadable file is one line."""
    if not file.exists():
        raise UserFacingError(f"{file}: no such file")
    if file.is_dir():
        raise UserFacingError(f"{file} is a directory, not a file of readings")
    try:
        with file.open("rb") as f:
            return sum(1 for line in f if line.strip())
    except OSError as error:
        raise UserFacingError(f"cannot read {file}: {error.strerror or error}") from None


def read_lines(file: Path) -> Iterator[tuple[int, bytes]]:
    """(line number from 1, bytes) as they are read: the file is never held whole."""
    with file.open("rb") as f:
        yield from enumerate(f, start=1)


# -- printing -------------------------------------------------------------------------------------


def print_report(report: ReplayReport, terms: ReplayTerms, log_tick_idle_s: float = 15.0) -> None:
    refused = sum(report.refused.values())
    console.print(f"{report.lines:,} lines: {report.accepted:,} readings accepted, {refused:,} refused by the API, "
                  f"{len(report.bad_lines):,} bad lines skipped", highlight=False)
    for bad in report.bad_lines[:SHOWN_BAD_LINES]:
        console.print(f"[yellow]line {bad.line_no}:[/yellow] {escape(bad.problem)}", highlight=False)
    if len(report.bad_lines) > SHOWN_BAD_LINES:
        console.print(f"… and {len(report.bad_lines) - SHOWN_BAD_LINES:,} more bad lines", highlight=False)
    if report.refused:
        console.print(refusals_table(report))
    if report.accepted == 0:
        console.print("[red]no reading was accepted:[/red] nothing to wait for")
        return
    if report.settled:
        console.print(f"waited {report.waited_s:.1f} s for the pipeline: {len(report.trips)} trip(s) hold these "
                      "readings", highlight=False)
    elif report.trips:
        console.print(f"[yellow]the trips were still changing after {report.waited_s:.0f} s (--timeout "
                      f"{terms.timeout_s:g}):[/yellow] showing those found so far", highlight=False)
    else:
        console.print(f"[yellow]no trip holds these readings after {report.waited_s:.0f} s.[/yellow] A trip ends "
                      "once its partition's log time passes it (docs/DOMAIN.md §3): with no other device writing "
                      f"there, a log tick after {log_tick_idle_s:g} s idle releases a trailing ignition_off, "
                      "and a recording cut off without one ends after gap_s (1 h) of log time. Is the pipeline "
                      "running (`autoins status`)?", highlight=False)
    if report.trips:
        console.print(trips_table(report))
        console.print(episodes_table(report))


def refusals_table(report: ReplayReport) -> Table:
    table = Table(title="refused by the API")
    for column in ("reason", "readings", "lines"):
        table.add_column(column)
    for reason, count in report.refused.most_common():
        numbers = report.refused_lines[reason]
        shown = ", ".join(map(str, numbers[:SHOWN_LINE_NUMBERS])) + (" …" if len(numbers) > SHOWN_LINE_NUMBERS else "")
        table.add_row(escape(reason), f"{count:,}", shown)
    return table


def trips_table(report: ReplayReport) -> Table:
    table = Table(title="trips")
    table.add_column("trip", no_wrap=True, min_width=36)  # whole: it is what the API's trip routes take
    table.add_column("driver")
    for column in ("start (UTC)", "end", "minutes", "km", "ended by", "episodes"):
        table.add_column(column, no_wrap=True)
    for found in report.trips:
        t = found.trip
        table.add_row(str(t.trip_id), escape(t.driver_id), _time(t.start_ms), _end(t.start_ms, t.end_ms),
                      f"{t.duration_s / 60:.1f}", f"{t.distance_m / 1000:.2f}", t.end_reason, str(len(found.episodes)))
    return table


def episodes_table(report: ReplayReport) -> Table:
    table = Table(title="episodes")
    for column in ("trip", "type", "grade", "start (UTC)", "seconds", "peak", "position", "limit km/h"):
        table.add_column(column, no_wrap=True)
    for found in report.trips:
        for e in found.episodes:
            peak = "" if e.peak_value is None else f"{e.peak_value:.1f} {e.peak_unit or ''}".strip()
            position = "" if e.lat is None or e.lon is None else f"{e.lat:.5f}, {e.lon:.5f}"
            limit = "" if e.speed_limit_kmh is None else f"{e.speed_limit_kmh:g}"
            table.add_row(str(found.trip.trip_id)[:8], e.type, e.grade or "", _time(e.start_ms), f"{e.duration_s:g}",
                          peak, position, limit)
    if not table.rows:
        table.add_row("", "(none)", "", "", "", "", "", "")
    return table


def _time(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _end(start_ms: int, end_ms: int) -> str:
    """The time of day when the trip ends on the day it started, else the whole date and time."""
    start, end = _time(start_ms), _time(end_ms)
    return end[11:] if end[:10] == start[:10] else end
