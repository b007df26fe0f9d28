"""`autoins`: the operator's command line. Each command parses settings once and hands them down."""

from __future__ import annotations

import json

import typer

from autoins.bench.cli import bench_app
from autoins.cli_support import console, settings_from_env, user_errors
from autoins.dashboards import dashboards_command
from autoins.db_commands import db_app, migrate_command, partitions_app
from autoins.demo import demo_command
from autoins.detection_report import detection_report_command
from autoins.dlq_commands import dlq_app
from autoins.errors import UserFacingError
from autoins.explain import explain_command
from autoins.maintenance_commands import maintenance_app
from autoins.replay import replay_command
from autoins.rollout import rollout_command
from autoins.seed import seed_command
from autoins.serve import deploy_command, serve_command, status_command, stop_command
from autoins.simulate import simulate_command
from autoins.stack.cli import stack_app
from autoins.train import train_command

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)
app.add_typer(stack_app, name="stack", help="Local PostgreSQL, Redis and Kafka: use what answers, start the rest.")
app.add_typer(
    partitions_app, name="partitions", help="Monthly partitions: ensure, retain (archive, drop), list, restore."
)
app.add_typer(db_app, name="db", help="Database utilities.")
app.add_typer(dlq_app, name="dlq", help="Dead letters: list and show them with reasons, replay chosen ones.")
app.add_typer(maintenance_app, name="maintenance",
              help="Database maintenance once, by hand: partitions ahead, retention, ANALYZE, size report.")
app.add_typer(bench_app, name="bench", help="Benchmarks on scratch databases and topics.")
app.command("migrate", help="Apply pending migrations, then ensure partitions.")(migrate_command)
app.command("serve", help="Start (or join) the supervised pipeline and the Serve apps, watch live; Ctrl-C stops.")(
    serve_command
)
app.command("deploy", help="Start (or join) the system and return; it keeps running without this process.")(
    deploy_command
)
app.command("rollout", help="Staged rollout of a new API build or model version (10 → 50 → 100 %), judged from "
            "Prometheus, rolled back on its own.")(rollout_command)
app.command("status", help="Health of the running system: every pipeline actor and Serve app.")(status_command)
app.command("stop", help="Stop the running system (pipeline, Serve apps, and the local Ray head it started).")(
    stop_command
)
app.command("demo", help="Pipeline + simulated fleet, watched live until drained.")(demo_command)
app.command("simulate")(simulate_command)
app.command("replay")(replay_command)
app.command("explain", help="A driver's score and premium decision at a time, recomputed and compared.")(
    explain_command
)
app.command("dashboards", help="Grafana dashboard JSON generated from code (print, --write, --check).")(
    dashboards_command
)
app.command("train", help="Train the risk model on a simulated fleet; save an artifact and report.")(train_command)
app.command("seed", help="Development only: demo drivers, policies and logins.")(seed_command)
app.command("detection-report", help="Harsh detectors vs the simulator's truth: precision, recall, false cornering.")(
    detection_report_command
)


@app.command("config")
@user_errors
def show_config() -> None:
    """Print the effective settings, secrets masked."""
    settings = settings_from_env()
    console.print_json(json.dumps(settings.redacted()))


@app.command("topics")
@user_errors
def ensure_topics_command() -> None:
    """Create the events topic (configured partitions) and its DLQ if missing."""
    from confluent_kafka import KafkaException

    from storage.kafka.clients import ensure_topics

    settings = settings_from_env()
    try:
        created = ensure_topics(settings)
    except KafkaException as error:
        raise UserFacingError(
            f"cannot create topics on Kafka at {settings.kafka_bootstrap_servers}: {_kafka_reason(error)}; "
            "run `autoins stack up`"
        ) from None
    for name in (settings.kafka_topic_events, settings.kafka_topic_dlq):
        console.print(f"{name}: {'created' if name in created else 'exists'}")


def _kafka_reason(error: Exception) -> str:
    first = error.args[0] if error.args else error
    return first.str() if hasattr(first, "str") else str(first)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
