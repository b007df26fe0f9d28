"""`autoins bench chaos` output: the one-line JSON, a rich table and its BENCHMARKS.md section."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

BEGIN, END = "<!-- bench:chaos begin -->", "<!-- bench:chaos end -->"
HEAD = ("lost", "duplicated", "trips_equal", "scores_equal", "recovery_s_max", "api_failed")


def json_line(result: dict) -> dict:
    """The issue's figures first (lost, duplicated, trips equal, scores equal, recovery, failed API requests)."""
    return {k: result[k] for k in HEAD} | {k: v for k, v in result.items() if k not in HEAD}


def _s(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}"


def _resumed(fault: dict) -> str:
    return "drained" if fault.get("drained") else _s(fault["resumed_s"])


def _yes(value: bool) -> str:
    return "yes" if value else "NO"


def render_table(result: dict, console: Console) -> None:
    table = Table(title=f"autoins bench chaos: {result['events']:,} readings at {result['rate']:,.0f}/s, "
                        f"{len(result['faults'])} fault(s)")
    for column in ("fault", "target", "at s", "ingest resumed s", "back s", "API failed (retried / first try)"):
        table.add_column(column, justify="left" if column in ("fault", "target") else "right")
    for f in result["faults"]:
        table.add_row(f["kind"], escape(str(f["target"]))[:48], _s(f["at_s"]), _resumed(f), _s(f["back_s"]),
                      f"{f['failed_requests']} / {f['failed_first_try']}")
    console.print(table)
    console.print(
        f"lost {result['lost']}, duplicated {result['duplicated']}; trips equal {_yes(result['trips_equal'])}, "
        f"scores equal {_yes(result['scores_equal'])}, all domain events equal {_yes(result['domain_events_equal'])}; "
        f"API: {result['api_failed']} of {result['api_requests']:,} requests failed after one retry "
        f"({result['api_failed_first_try']} on the first try); "
        f"verified {_yes(result['verified'])}", highlight=False)
    for name, d in result.get("differences", {}).items():
        console.print(f"{name}: {d['only_faulty']} row(s) only in the faulty run, {d['only_clean']} only in the "
                      "fault-free one", highlight=False)
        for side in ("only_faulty_rows", "only_clean_rows"):
            for row in d[side]:
                console.print(f"  {side.removesuffix('_rows').replace('_', ' ')}: {escape(row)}", highlight=False)


def _kinds(failures: dict[str, int]) -> str:
    return ", ".join(f"{k}: {v}" for k, v in failures.items()) or "none"


def section_markdown(result: dict) -> str:
    m = result["machine"]
    lines = [
        BEGIN,
        f"### Chaos: {len(result['faults'])} fault(s) while {result['events']:,} readings stream in, against a "
        f"fault-free run — {result['date']}",
        "",
        f"Command: `{result['command']}`",
        "",
        f"Machine: {m['nproc']} CPUs ({m['cpu_model']}), {m['memory_gib']} GiB RAM; Python {m['python']}, "
        f"Ray {m['ray']}, {m['postgres']}. One local Ray cluster of the bench's own "
        f"({'a head and 2 worker nodes' if result['node_loss'] else 'one node'}); pipeline of "
        f"{result['shape']['kafka_num_consumers']} consumers, {result['shape']['num_shards']} shards, "
        f"{result['shape']['num_persistence']} persistence actors, the scorer and its supervisor; "
        f"{result['shape']['api_num_replicas']} API replicas; produced at {result['rate']:,.0f} readings/s; "
        "the API probed throughout by 4 clients that retry a failed GET once.",
        "",
        "| fault | target | at s | ingest resumed after s | role back after s | API failed after a retry | "
        "… on the first try |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for f in result["faults"]:
        lines.append(f"| {f['kind']} | `{f['target']}` | {_s(f['at_s'])} | {_resumed(f)} | {_s(f['back_s'])} "
                     f"| {f['failed_requests']} | {f['failed_first_try']} |")
    lines += [
        "",
        f"- lost **{result['lost']}**, duplicated **{result['duplicated']}** of {result['events']:,} readings",
        f"- trips equal: **{_yes(result['trips_equal'])}**; scores equal (risk_scores, risk events, premiums): "
        f"**{_yes(result['scores_equal'])}**; every domain event equal: **{_yes(result['domain_events_equal'])}**",
        f"- API: **{result['api_failed']}** of {result['api_requests']:,} requests failed after one retry "
        f"({_kinds(result['api_failures'])}); {result['api_failed_first_try']} on the first try "
        f"({_kinds(result['api_first_try_failures'])})",
        f"- consumer rewinds {result['rewinds']}; the faulty run took {result['faulty_elapsed_s']} s, the fault-free "
        f"one {result['clean_elapsed_s']} s",
        "",
        "| compared | faulty rows | fault-free rows | equal |",
        "|---|---:|---:|---|",
    ]
    for name, c in result["compared"].items():
        lines.append(f"| {name} | {c['faulty_rows']:,} | {c['clean_rows']:,} | {_yes(c['equal'])} |")
    lines += ["", END]
    return "\n".join(lines)
