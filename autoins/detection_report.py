"""`autoins detection-report`: precision and recall of the harsh detectors against the simulator's truth.

Pure computation at the edge of the CLI (no services): simulate a fleet, exactly and in each realism mode,
fold it through the trip machine, match the harsh episodes to the true ones (`domain.detection_quality`,
matching rule in docs/DOMAIN.md §4) and print a table per mode and seed.
"""

from __future__ import annotations

from typing import Annotated

import typer

from autoins.cli_support import console, user_errors
from autoins.errors import UserFacingError
from domain.detection_quality import evaluate, format_report
from domain.simulator.realism import REALISM_MODES

START_MS = 1_780_000_000_000  # 2026-05-28, the instant the unit tests use: the figures are reproducible


@user_errors
def detection_report_command(
    drivers: Annotated[int, typer.Option("--drivers", min=1, help="Simulated drivers.")] = 100,
    days: Annotated[float, typer.Option("--days", min=0.01, help="Simulated days.")] = 2.0,
    seeds: Annotated[list[int] | None, typer.Option("--seed", min=0, help="Seed (repeat for several).")] = None,
    modes: Annotated[list[str] | None, typer.Option(
        "--realism", help="`none` (exact kinematics) or a realism mode; repeat for several. Default: none and phone."
    )] = None,
    tolerance_s: Annotated[float, typer.Option("--tolerance-s", min=0.0, help="Matching tolerance (s).")] = 2.0,
) -> None:
    """Print precision/recall per harsh kind and false cornering per 100 motorway km."""
    for mode in modes or ["none", "phone"]:
        if mode != "none" and mode not in REALISM_MODES:
            raise UserFacingError(f"--realism {mode!r}: expected one of none, {', '.join(REALISM_MODES)}")
    for mode in modes or ["none", "phone"]:
        for seed in seeds or [11]:
            report = evaluate(drivers, days, seed, start_ms=START_MS, realism=REALISM_MODES.get(mode),
                              tolerance_s=tolerance_s)
            console.print(f"== realism {mode}, {drivers} drivers x {days:g} days, seed {seed}", highlight=False)
            console.print(format_report(report), highlight=False)
