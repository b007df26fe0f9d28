"""Grafana dashboards generated from code (`autoins dashboards`): the plan's §10 monitoring panels.

One list of panels (`OVERVIEW`) holds every PromQL query, so the committed JSON (`config/grafana/`), the test that
runs each query against a real Prometheus (tests/integration/test_prometheus.py) and the runbooks name the same
thing. The JSON is built with grafana-foundation-sdk's builders rather than written by hand; a unit test fails
when the committed file and this module disagree (`autoins dashboards --write` regenerates it).

Names are as Ray's agent exports them (`ray_` prefix, counters end in `_total`; docs/OPERATIONS.md "Families").
Every query aggregates over replicas and nodes, so a replica restart never shows as a gap.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import typer

from config.settings import PROJECT_ROOT

DASHBOARD_DIR = PROJECT_ROOT / "config" / "grafana"
OVERVIEW_UID = "autoins-overview"
RATE = "5m"  # every rate() window: four scrapes at the default 15 s interval, smooth enough for a 1 h view


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str


@dataclass(frozen=True)
class Panel:
    title: str
    description: str
    unit: str
    queries: tuple[Query, ...]


@dataclass(frozen=True)
class Row:
    title: str
    panels: tuple[Panel, ...]


def _quantiles(metric: str, by: str = "") -> tuple[Query, ...]:
    """p50/p95/p99 of a histogram summed over every replica and node (optionally kept apart `by` a label)."""
    keep = f"le, {by}" if by else "le"
    suffix = f" {{{{{by}}}}}" if by else ""
    return tuple(
        Query(f"histogram_quantile({q}, sum by ({keep}) (rate({metric}_bucket[{RATE}])))", f"p{round(q * 100)}{suffix}")
        for q in (0.5, 0.95, 0.99)
    )


HTTP = "ray_http_request_duration_seconds"

OVERVIEW: tuple[Row, ...] = (
    Row("API", (
        Panel("Request rate", "Answers per second, by status code.", "reqps", (
            Query(f'sum by (status) (rate({HTTP}_count[{RATE}]))', "{{status}}"),
        )),
        Panel("Latency p50 / p95 / p99", "Every route, every replica (alert: p95 > 300 ms).", "s", _quantiles(HTTP)),
        Panel("Error rate", "Share of answers that are 5xx (alert: > 1 %).", "percentunit", (
            Query(f'sum(rate({HTTP}_count{{status=~"5.."}}[{RATE}])) / sum(rate({HTTP}_count[{RATE}]))', "5xx"),
            Query(f'sum(rate({HTTP}_count{{status=~"4.."}}[{RATE}])) / sum(rate({HTTP}_count[{RATE}]))', "4xx"),
        )),
        Panel("Slowest routes (p95)", "The five routes with the highest p95.", "s", (
            Query(f"topk(5, histogram_quantile(0.95, sum by (le, endpoint) (rate({HTTP}_bucket[{RATE}]))))",
                  "{{endpoint}}"),
        )),
    )),
    Row("PostgreSQL and cache", (
        Panel("DB query time p95", "Statements by verb and first table (asyncpg's logger and the COPY path).", "s", (
            Query("histogram_quantile(0.95, sum by (le, query_type, table) "
                  f"(rate(ray_db_query_duration_seconds_bucket[{RATE}])))", "{{query_type}} {{table}}"),
        )),
        Panel("Connection pools", "Open and available connections per pool (alert: available = 0).", "short", (
            Query("sum by (pool) (ray_db_connection_pool_size)", "open {{pool}}"),
            Query("min by (pool) (ray_db_connection_pool_available)", "available {{pool}}"),
        )),
        Panel("Cache hit rate", "Hits over lookups, per level (l1 in the replica, l2 in Redis).", "percentunit", (
            Query(f"sum by (cache_type) (rate(ray_cache_hits_total[{RATE}])) / (sum by (cache_type) "
                  f"(rate(ray_cache_hits_total[{RATE}])) + sum by (cache_type) (rate(ray_cache_misses_total[{RATE}])))",
                  "{{cache_type}}"),
        )),
        Panel("Cache latency p95", "Redis reads and writes of the API cache.", "s", (
            Query("histogram_quantile(0.95, sum by (le, operation) "
                  f"(rate(ray_cache_latency_seconds_bucket[{RATE}])))", "{{operation}}"),
        )),
    )),
    Row("Pipeline", (
        Panel("Kafka consumer lag", "Messages past the group's committed offset, per partition, measured from "
              "outside the consumers (alert: > 10,000).", "short", (
                  Query("max by (topic, partition) (ray_kafka_consumer_lag)", "{{topic}} p{{partition}}"),
              )),
        Panel("Events per second", "Readings made durable per second, and dead-lettered ones.", "ops", (
            Query(f'sum(rate(ray_kafka_messages_processed_total{{status="valid"}}[{RATE}]))', "durable"),
            Query(f'sum(rate(ray_kafka_messages_processed_total{{status="dlq"}}[{RATE}]))', "dead-lettered"),
        )),
        Panel("Batch processing p95", "Poll to durable ack of one consumer batch.", "s",
              _quantiles("ray_kafka_message_processing_seconds")),
        Panel("Pipeline actor restarts", "Restarts seen by the supervisor in the last 15 min (alert: ≥ 3).", "short", (
            Query("sum by (role) (increase(ray_pipeline_actor_restarts_total[15m]))", "{{role}}"),
        )),
    )),
    Row("Risk model", (
        Panel("ML inference time", "RiskModel predict time per batch.", "s",
              _quantiles("ray_ml_inference_duration_seconds")),
        Panel("ML batch size", "Requests per predict call (@serve.batch): mean and p95.", "short", (
            Query(f"sum(rate(ray_ml_batch_size_sum[{RATE}])) / sum(rate(ray_ml_batch_size_count[{RATE}]))", "mean"),
            Query(f"histogram_quantile(0.95, sum by (le) (rate(ray_ml_batch_size_bucket[{RATE}])))", "p95"),
        )),
        Panel("Model ready", "Replicas with a model loaded (alert: any at 0).", "short", (
            Query("sum(ray_ml_model_ready)", "ready"),
            Query("count(ray_ml_model_ready)", "replicas"),
        )),
        Panel("Model drift (PSI)", "Population stability of each model input and of the score against training, "
              "hourly by the maintenance actor (alert: above DRIFT_PSI_ALERT for 1 h).", "short", (
            Query("max by (feature) (ray_model_feature_psi)", "{{feature}}"),
            Query("max(ray_model_score_psi)", "score"),
            Query("max(ray_model_drift_psi_threshold)", "threshold"),
        )),
        Panel("Cohort premium ratio", "Each cohort's mean premium over the portfolio's (alert: outside "
              "COHORT_RATIO_LOW..HIGH for 1 h).", "short", (
            Query("max by (dimension, cohort) (ray_cohort_premium_ratio)", "{{dimension}}={{cohort}}"),
        )),
    )),
    Row("Business", (
        Panel("Active drivers and trips", "Active drivers; drivers whose latest trip event of the last day is a start.",
              "short", (
                  Query("max(ray_active_drivers_total)", "active drivers"),
                  Query("max(ray_active_trips_total)", "trips in progress"),
              )),
        Panel("Trips and scores per hour", "Trips stored as ended and scores stored, over the last hour.", "short", (
            Query("sum(increase(ray_trips_ended_total[1h]))", "trips ended"),
            Query("sum(increase(ray_risk_scores_written_total[1h]))", "scores"),
        )),
        Panel("Average risk score", "Mean of every driver's latest score (0..100).", "short", (
            Query("max(ray_average_risk_score)", "average score"),
        )),
        Panel("Live connections", "Open WebSockets by feed.", "short", (
            Query("sum by (kind) (ray_websocket_connections)", "{{kind}}"),
        )),
    )),
)


def all_queries(rows: tuple[Row, ...] = OVERVIEW) -> list[tuple[str, str]]:
    """(panel title, PromQL) of every query, for the tests that check them against Prometheus."""
    return [(panel.title, query.expr) for row in rows for panel in row.panels for query in panel.queries]


def build_overview(rows: tuple[Row, ...] = OVERVIEW) -> dict:
    """The dashboard as Grafana's JSON model, with a `datasource` variable (any Prometheus)."""
    from grafana_foundation_sdk.builders import dashboard, prometheus, timeseries
    from grafana_foundation_sdk.cog.encoder import JSONEncoder
    from grafana_foundation_sdk.models.dashboard import DataSourceRef

    source = DataSourceRef(type_val="prometheus", uid="${datasource}")
    board = (
        dashboard.Dashboard("Auto-insurance: overview")
        .uid(OVERVIEW_UID)
        .description("The plan's §10 panels: API, PostgreSQL and cache, pipeline, risk model, business. "
                     "Generated by `autoins dashboards --write` (autoins/dashboards.py); do not edit by hand.")
        .tags(["autoins"])
        .time("now-1h", "now")
        .refresh("30s")
        .timezone("browser")
        .with_variable(dashboard.DatasourceVariable("datasource").label("Prometheus").type("prometheus"))
    )
    for row in rows:
        board = board.with_row(dashboard.Row(row.title))
        for panel in row.panels:
            built = (
                timeseries.Panel().title(panel.title).description(panel.description).unit(panel.unit)
                .datasource(source).height(8).span(6)
            )
            for ref_id, query in zip("ABCDEFGH", panel.queries, strict=False):
                built = built.with_target(
                    prometheus.Dataquery().ref_id(ref_id).expr(query.expr).legend_format(query.legend)
                )
            board = board.with_panel(built)
    return json.loads(json.dumps(board.build(), cls=JSONEncoder))


def render(model: dict) -> str:
    return json.dumps(model, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def overview_path() -> Path:
    return DASHBOARD_DIR / f"{OVERVIEW_UID}.json"


def dashboards_command(
    write: bool = typer.Option(False, "--write", help="Write config/grafana/autoins-overview.json."),
    check: bool = typer.Option(False, "--check", help="Exit 1 when the committed file differs from the code."),
) -> None:
    """Print (or write, or check) the Grafana dashboard JSON generated from autoins/dashboards.py."""
    text = render(build_overview())
    path = overview_path()
    if check:
        current = path.read_text(encoding="utf-8") if path.is_file() else ""
        if current != text:
            typer.echo(f"{path} is out of date: run `autoins dashboards --write`", err=True)
            raise typer.Exit(1)
        typer.echo(f"{path} is current ({len(all_queries())} queries)")
        return
    if write:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        typer.echo(f"wrote {path} ({len(all_queries())} queries)")
        return
    typer.echo(text, nl=False)
