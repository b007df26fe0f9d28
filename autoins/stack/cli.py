"""`autoins stack up | status | down`: the entrypoint. Reads settings and the AUTOINS_STACK_*
binary overrides once, calls the library (services.py), renders Rich tables. Nothing else here."""

from __future__ import annotations

import os
from urllib.parse import urlsplit

import typer
from rich.markup import escape
from rich.table import Table

from autoins.cli_support import console, settings_from_env, user_errors
from autoins.stack.binaries import BinaryOverrides
from autoins.stack.services import StackOptions, stack_down, stack_status, stack_up

stack_app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)


def _options(command: str) -> StackOptions:
    return StackOptions(binaries=BinaryOverrides.from_environ(os.environ), started_by=f"autoins stack {command}")


def _print_table(title: str, columns: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    """Columns empty in every row are left out, so the URLs get the width."""
    keep = [i for i, name in enumerate(columns) if name in ("service", "url") or any(row[i] for row in rows)]
    table = Table(title=title, title_justify="left")
    for i in keep:
        # URLs are for copying: never cut them with an ellipsis, wrap instead.
        table.add_column(columns[i], overflow="fold", no_wrap=columns[i] in ("service", "pid"))
    for row in rows:
        table.add_row(*(row[i] for i in keep))
    console.print(table)


def _shown(url: str) -> str:
    """A URL for the screen: the password masked (stack.env keeps the real one)."""
    password = urlsplit(url).password if "://" in url else None
    return url.replace(f":{password}@", ":****@", 1) if password else url


@stack_app.command("up")
@user_errors
def up() -> None:
    """Use what answers at DATABASE_URL, REDIS_URL, KAFKA_BOOTSTRAP_SERVERS; start the rest locally, and Prometheus
    with Alertmanager when installed."""
    settings = settings_from_env()
    report = stack_up(settings, _options("up"))
    _print_table(
        "autoins stack up", ("service", "url", "state", "owner", "pid", "note"),
        [(r.service.label, _shown(r.url), r.action, r.owner.value, str(r.pid or ""), r.detail)
         for r in report.services],
    )
    if not report.started:
        console.print("Nothing started: every service answers already.")
    where = "written to" if report.env_changed else "unchanged in"
    console.print(f"URLs {where} {report.env_file} (read by every autoins command). "
                  f"Ready in {report.elapsed_s:.1f} s.", highlight=False, soft_wrap=True)


@stack_app.command("status")
@user_errors
def status() -> None:
    """Each service: URL, who started it (stack/external), our pid, whether it answers; exit 1 if a required one
    does not (Prometheus/Alertmanager not installed is not a failure)."""
    settings = settings_from_env()
    rows = stack_status(settings, _options("status"))
    _print_table(
        "autoins stack status", ("service", "url", "owner", "pid", "answers", "note"),
        [(r.service.label, _shown(r.url), r.owner.value, str(r.pid or ""),
          "[green]yes[/green]" if r.answers else "[red]no[/red]", escape(str(r.detail))) for r in rows],
    )
    if not all(row.answers for row in rows if row.required):
        raise typer.Exit(1)


@stack_app.command("down")
@user_errors
def down() -> None:
    """Stop what `stack up` started; leave external services alone."""
    settings = settings_from_env()
    rows = stack_down(settings, _options("down"))
    _print_table(
        "autoins stack down", ("service", "url", "pid", "result"),
        [(r.service.label, _shown(r.url), str(r.pid or ""), r.result) for r in rows],
    )
