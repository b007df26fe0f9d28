"""`autoins explain DRIVER [--at TIME]`: the score-and-premium decision in force for a driver at a time, what it
was computed from, and whether recomputing it now with the same model and rules gives the same result.

The edge: reads the decision from the log (storage.postgres.decisions), loads the recorded model version's
artifact from `models_dir` (verified and signed, storage.files.model_artifacts), and prints with rich. The
comparison is usecases.explain. Expected failures (unknown driver, a bad time, no database) are one line, exit 1
or 2.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from autoins.cli_support import console, run, settings_from_env, user_errors
from autoins.db_commands import connected
from autoins.errors import UserFacingError
from config.rules import rules_in_force
from config.settings import Settings
from domain.decisions import Decision, features_by_name
from domain.risk_assessment import RiskAssessment, ScoreRequest
from domain.risk_model import ArtifactError, RiskPredictor
from storage.files.model_artifacts import load_artifact
from storage.postgres.decisions import decision_at, driver_exists
from usecases.explain import Explanation, ModelGone, explain


class BadArgument(UserFacingError):
    exit_code = 2


class DiskModels:
    """The ArtifactModels port over `models_dir`: each version's artifact loaded once, verified before unpickling."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._loaded: dict[str, RiskPredictor] = {}

    def assess(self, model_version: str, request: ScoreRequest) -> RiskAssessment:
        if model_version not in self._loaded:
            try:
                artifact = load_artifact(self.settings.models_dir, model_version,
                                         signing_key=self.settings.model_signing_key)
                self._loaded[model_version] = RiskPredictor(artifact.spec, artifact.estimator, artifact.model_version)
            except (ArtifactError, ValueError, OSError) as error:
                raise ModelGone(f"model artifact {model_version} is no longer available in "
                                f"{self.settings.models_dir}: {error}") from None
        return self._loaded[model_version].assess_many([request], k_trips=self.settings.credibility_k_trips)[0]


def parse_time(text: str | None, now: datetime) -> datetime:
    """ISO 8601 (a date, or a time; no zone means UTC); None means now. BadArgument with an example otherwise."""
    if text is None:
        return now
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise BadArgument(f"--at {text!r} is not a time: use ISO 8601, e.g. 2026-12-05T14:30:00Z or 2026-12-05") \
            from None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


@user_errors
def explain_command(
    driver_id: Annotated[str, typer.Argument(help="The driver, e.g. driver0001.")],
    at: Annotated[str | None, typer.Option("--at", help="The decision in force at this time (ISO 8601, UTC unless "
                                                        "a zone is given). Default: now.")] = None,
) -> None:
    """Print the decision in force at a time: inputs, model, feature hash, rules version, score, premium steps,
    and whether recomputing it with the same model and rules gives the same result."""
    settings = settings_from_env()
    when = parse_time(at, datetime.now(UTC))
    at_ms = int(when.timestamp() * 1000)
    decision = run(_load(settings, driver_id, at_ms))
    if decision is None:
        raise UserFacingError(f"driver {driver_id} has no score decided at or before {when.isoformat()}")
    rules = rules_in_force(settings)
    _print(explain(decision, DiskModels(settings), rules), when)


async def _load(settings: Settings, driver_id: str, at_ms: int) -> Decision | None:
    async with connected(settings) as conn:
        if not await driver_exists(conn, driver_id):
            raise UserFacingError(f"unknown driver {driver_id!r}")
        return await decision_at(conn, driver_id, at_ms)


def _applied(applied: bool, direction: str | None = None) -> str:
    return ("applied" + (f" ({direction})" if direction else "")) if applied else "not needed"


def _yes(value: bool | None) -> str:
    return "n/a" if value is None else "[green]same[/green]" if value else "[red]DIFFERENT[/red]"


def _print(x: Explanation, when: datetime) -> None:
    d = x.decision
    occurred = datetime.fromtimestamp(d.occurred_at_ms / 1000, UTC).isoformat()
    console.print(f"[bold]{escape(d.driver_id)}[/bold]: the decision in force at {when.isoformat()}")
    head = Table(show_header=False, box=None)
    for name, value in (("cause", d.cause), ("decided for", occurred), ("event", str(d.event_id)),
                        ("trip", str(d.trip_id)), ("dispute", str(d.dispute_id) if d.dispute_id else "-"),
                        ("model version", d.model_version), ("feature hash", d.feature_hash),
                        ("rules version", d.rules_version or "(not recorded)"), ("score", f"{d.score:.2f}"),
                        ("band", d.band), ("credibility", f"{d.credibility:.4f}")):
        head.add_row(name, escape(value))
    console.print(head)
    features = Table(title="model inputs (features)")
    features.add_column("feature")
    features.add_column("value", justify="right")
    for name, value in features_by_name(d).items():
        features.add_row(name, f"{value:.6g}")
    if features.row_count:
        console.print(features)
    if d.premium is not None:
        steps = Table(title=f"premium ({escape(d.currency or '')})")
        steps.add_column("step")
        steps.add_column("recorded", justify="right")
        steps.add_column("recomputed now", justify="right")
        q = x.requoted
        rows = [("annual km", f"{d.annual_km:.1f}", f"{q.annual_km:.1f}" if q else "-"),
                ("band part: base × band", "", f"{q.base_premium} × {q.band_multiplier} = {q.band_premium}" if q
                 else "-"),
                ("per-km part: rate × annual km", "", f"{q.per_km_rate} × km = {q.per_km_premium}" if q else "-"),
                ("raw premium", str(d.raw_premium), str(q.raw_premium) if q else "-"),
                ("previous premium", str(d.previous_premium), str(q.previous_premium) if q else "-"),
                ("cap (±max_change_ratio)", _applied(d.cap_applied), _applied(q.cap_applied, q.cap_direction) if q
                 else "-"),
                ("clamp (min, max)", _applied(d.clamp_applied), _applied(q.clamp_applied) if q else "-"),
                ("premium", str(d.premium), str(q.premium) if q else "-")]
        for row in rows:
            steps.add_row(*(escape(cell) for cell in row))
        console.print(steps)
    else:
        console.print("no premium: the driver had no active policy, or the quote predates recorded tariffs")
    console.print(f"feature hash of the recorded features: {_yes(x.hash_holds)}")
    if x.model_problem:
        console.print(f"[yellow]score not recomputed:[/yellow] {escape(x.model_problem)}")
    else:
        console.print(f"score recomputed with {escape(d.model_version)}: {x.recomputed.score:.2f} "
                      f"{_yes(x.score_same)}")
    if not x.rules_same:
        console.print(f"[yellow]rules version {escape(d.rules_version or '(not recorded)')} is no longer in force "
                      f"(now {escape(x.rules_now)}): the premium above is recomputed with the rules in force, for "
                      "comparison only[/yellow]")
    console.print(f"premium recomputed: {_yes(x.premium_same)}")
    verdict = "[green]reproduced[/green]: the same model and rules give the same result" if x.reproduced else \
        "[red]not reproduced[/red] with the same model and rules (see above)"
    console.print(verdict)
