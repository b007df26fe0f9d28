"""Presenting a steady-state run: the one-line JSON, a rich table, and its BENCHMARKS.md section (between
`<!-- bench:steady rate=R begin -->` and `… end -->`: a re-run at the same rate replaces it in place)."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from autoins.bench.report import machine_line

JSON_HEAD = ("rate", "achieved_rate", "durable_rate", "lag_p50", "lag_p95", "ws_p50_ms", "ws_p95_ms", "goals_met")


def markers(rate: float) -> tuple[str, str]:
    return f"<!-- bench:steady rate={rate:g} begin -->", f"<!-- bench:steady rate={rate:g} end -->"


def json_line(result: dict) -> dict:
    """The headline keys first, in the documented order, then the rest."""
    return {**{k: result.get(k) for k in JSON_HEAD}, **{k: v for k, v in result.items() if k not in JSON_HEAD}}


def _n(value: float | int | None, digits: int = 0) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


def _yes(met: bool) -> str:
    return "yes" if met else "**no**"


def rows(result: dict) -> list[tuple[str, str, str]]:
    """(figure, value, goal) rows shared by the table and the Markdown."""
    goals = result["goals"]
    return [
        ("producer rate, asked / achieved (readings/s)", f"{_n(result['rate'])} / {_n(result['achieved_rate'])}", ""),
        ("durable rate over the window (readings/s)", _n(result["durable_rate"]), ""),
        ("consumer lag p50 / p95 / max (messages)",
         f"{_n(result['lag_p50'])} / {_n(result['lag_p95'])} / {_n(result['lag_max'])}",
         f"p95 < {goals['lag_p95_below']:,}: {_yes(goals['lag_met'])}"),
        ("event → WebSocket p50 / p95 / max (ms)",
         f"{_n(result['ws_p50_ms'])} / {_n(result['ws_p95_ms'])} / {_n(result['ws_max_ms'])}",
         f"p50, p95 < {goals['ws_p50_p95_below_ms']:g}: {_yes(goals['ws_met'])}"),
        ("WebSocket probes received / sent (timed after the warm-up)",
         f"{result['probes_received']:,} / {result['probes_sent']:,} ({result['probes_timed']:,})", ""),
        ("batches in the window, mean size", f"{result['batches']:,}, {_n(result['mean_batch'])}", ""),
        ("batch target p50 / max", f"{_n(result['batch_target_p50'])} / {_n(result['batch_target_max'])}", ""),
        ("tail drained after the producer stopped (s)", _n(result["catch_up_s"], 1), ""),
        ("rows stored / distinct ids / produced",
         f"{result['rows_stored']:,} / {result['distinct_event_ids']:,} / "
         f"{result['readings'] + result['probes_sent']:,}", "exactly once: " + _yes(result["verified"])),
    ]


def render_table(result: dict, console: Console) -> None:
    table = Table(title=f"autoins bench ingest — steady state, {result['rate']:,.0f} readings/s for "
                        f"{result['duration_s']:,.0f} s, {result['drivers']:,} drivers")
    table.add_column("figure")
    table.add_column("value", justify="right")
    table.add_column("goal")
    for figure, value, goal in rows(result):
        table.add_row(figure, value, goal.replace("**", ""))
    console.print(table)
    console.print("goals met: " + ("yes" if result["goals_met"] else "no"), highlight=False)


def section_markdown(result: dict) -> str:
    m, shape, cpu = result["machine"], result["shape"], result.get("cpu_s", {})
    begin, end = markers(result["rate"])
    busy = ", ".join(f"{k} {v:,.1f}" for k, v in cpu.items() if k not in ("window_s", "other_top", "machine"))
    lines = [
        begin,
        f"### Steady state: {result['rate']:,.0f} readings/s for {result['duration_s']:,.0f} s, "
        f"{result['drivers']:,} drivers — {result['date']}",
        "",
        f"Command: `{result['command']}`",
        "",
        machine_line(result),
        f"Pipeline: {shape['consumers']} consumer(s), {shape['shards']} shards, {shape['persistence']} persistence "
        f"actor(s), batches of {shape['min_batch_size']:,}–{shape['batch_size']:,} (linger up to "
        f"{shape['linger_ms']} ms), {shape['partitions']} partitions, supervised; the WebSocket app on Serve in "
        f"the same Ray.",
        "",
        "| figure | value | goal |",
        "|---|---:|---|",
        *(f"| {figure} | {value} | {goal} |" for figure, value, goal in rows(result)),
        "",
        f"Goals met: **{'yes' if result['goals_met'] else 'no'}**. Lag sampled {result['lag_samples']:,} times "
        f"over the {result['window_s']:.0f} s window; dead-lettered {result['dead_lettered']}, rewinds "
        f"{result['rewinds']}.",
        "",
        f"CPU seconds in the window ({cpu.get('window_s', 0):.0f} s, machine busy {cpu.get('machine', 0):,.0f} of "
        f"{cpu.get('window_s', 0) * m['nproc']:,.0f}): {busy}.",
        "",
        end,
    ]
    return "\n".join(lines)
