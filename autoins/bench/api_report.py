"""`autoins bench api` output: the one-line JSON, a rich table and its BENCHMARKS.md section."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

BEGIN, END = "<!-- bench:api begin -->", "<!-- bench:api end -->"


def json_line(result: dict) -> dict:
    """The issue's keys first (`endpoints`, `noop`, `errors`, `cache_hit_rate`), then the rest."""
    head = ("endpoints", "noop", "errors", "cache_hit_rate")
    endpoints = {name: {k: e[k] for k in ("p50_ms", "p95_ms", "p99_ms", "rps", "errors")}
                 for name, e in result["endpoints"].items()}
    noop = {k: result["noop"][k] for k in ("p50_ms", "p95_ms", "p99_ms")} if result.get("noop") else None
    return {"endpoints": endpoints, "noop": noop, "errors": result["errors"],
            "cache_hit_rate": result["cache_hit_rate"], **{k: v for k, v in result.items() if k not in head}}


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value:,.2f}"


def render_table(result: dict, console: Console) -> None:
    table = Table(title=f"autoins bench api: {result['users']} users × {result['duration_s']} s (plan's mix)")
    for column in ("endpoint", "p50 ms", "p95 ms", "p99 ms", "req/s", "errors", "p95 / no-op p95"):
        table.add_column(column, justify="left" if column == "endpoint" else "right")
    ratios = result.get("p95_over_noop", {})
    for name, e in result["endpoints"].items():
        table.add_row(name, _ms(e["p50_ms"]), _ms(e["p95_ms"]), _ms(e["p99_ms"]), f"{e['rps']:,.1f}",
                      str(e["errors"]), _ms(ratios.get(name)))
    if result.get("noop"):
        n = result["noop"]
        table.add_row("no-op (same run)", _ms(n["p50_ms"]), _ms(n["p95_ms"]), _ms(n["p99_ms"]), f"{n['rps']:,.1f}",
                      str(n["errors"]), "1.00")
    console.print(table)
    console.print(f"errors {result['errors']}, cache hit rate {result['cache_hit_rate']}", highlight=False)
    if result.get("throughput"):
        t = result["throughput"]
        console.print(f"throughput phase: {t['users']} users, no think time, {t['duration_s']} s: "
                      f"{t['rps']:,.0f} req/s, p50 {_ms(t['p50_ms'])} ms, p95 {_ms(t['p95_ms'])} ms, "
                      f"errors {t['errors']}", highlight=False)


def section_markdown(result: dict) -> str:
    m = result["machine"]
    lines = [
        BEGIN,
        f"### API: the plan's locust user, {result['users']} users × {result['duration_s']} s — {result['date']}",
        "",
        f"Command: `{result['command']}`",
        "",
        f"Machine: {m['nproc']} CPUs ({m['cpu_model']}), {m['memory_gib']} GiB RAM; Python {m['python']}, "
        f"Ray {m['ray']}, {m['postgres']}; load average before the run {m['loadavg_1m_before']}. Serve with the "
        f"HAProxy ingress, {result['shape']['api_replicas']} API replicas (num_cpus=0); locust (the load generator) "
        "runs on the same 2 cores.",
        "",
        "| endpoint | p50 ms | p95 ms | p99 ms | req/s | errors | p95 / no-op p95 |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    ratios = result.get("p95_over_noop", {})
    for name, e in result["endpoints"].items():
        lines.append(f"| `{name}` | {_ms(e['p50_ms'])} | **{_ms(e['p95_ms'])}** | {_ms(e['p99_ms'])} | "
                     f"{e['rps']:,.1f} | {e['errors']} | {_ms(ratios.get(name))} |")
    if result.get("noop"):
        n = result["noop"]
        lines.append(f"| no-op Serve endpoint (same run) | {_ms(n['p50_ms'])} | {_ms(n['p95_ms'])} | "
                     f"{_ms(n['p99_ms'])} | {n['rps']:,.1f} | {n['errors']} | 1.00 |")
    lines += ["", f"Errors: {result['errors']}; cache hit rate (L1 or L2 answered): {result['cache_hit_rate']} "
                  f"({result.get('cache_counters', {})})."]
    if result.get("throughput"):
        t = result["throughput"]
        lines += ["", f"Throughput phase (cached GET mix, {t['users']} users, no think time, FastHttpUser, "
                      f"{t['duration_s']} s): **{t['rps']:,.0f} req/s**, p50 {_ms(t['p50_ms'])} ms, "
                      f"p95 **{_ms(t['p95_ms'])} ms**, errors {t['errors']}"
                      + (f"; no-op in the same phase p95 {_ms(t['noop']['p95_ms'])} ms." if t.get("noop") else ".")]
    lines += ["", END]
    return "\n".join(lines)
