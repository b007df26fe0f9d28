"""Presenting a run: the one-line JSON, a rich table, and its section of BENCHMARKS.md.

A run's section sits between `<!-- bench:ingest events=N begin -->` and `… end -->` markers. Writing
replaces the section with the same N in place (a re-run of the acceptance figure updates it) and
appends a section for a new N; everything outside the markers (the prose) is kept as written.
"""

from __future__ import annotations

import os
import platform
import re
from pathlib import Path

from rich.console import Console
from rich.table import Table

from autoins.bench.pipeline_run import STAGES

JSON_HEAD = ("events", "events_per_s", "raw_events_per_s", "ratio", "p95_persist_ms", "peak_lag", "rss_mb")
_NEW_FILE = """# Benchmarks

Generated sections (between `bench:` markers) are written by `autoins bench …`; see
docs/BENCHMARKING.md for how to run them and what each figure means.
"""


def machine_info(postgres: str, redis: str) -> dict:
    """nproc, memory, CPU model (/proc/cpuinfo), versions, and the load average before the run."""
    import ray

    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import psutil

    return {
        "nproc": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "cpu_model": model,
        "python": platform.python_version(),
        "ray": ray.__version__,
        "postgres": postgres,
        "redis": redis,
        "loadavg_1m_before": round(os.getloadavg()[0], 2),
    }


def json_line(result: dict) -> dict:
    """The required keys first, in the documented order, then the rest."""
    return {**{k: result.get(k) for k in JSON_HEAD}, **{k: v for k, v in result.items() if k not in JSON_HEAD}}


def _n(value: float | int | None, digits: int = 0) -> str:
    if value is None:
        return "—"
    return f"{value:,.{digits}f}"


def render_table(result: dict, console: Console) -> None:
    raw = result.get("raw") or {}
    table = Table(title=f"autoins bench ingest — {result['events']:,} readings, {result['drivers']:,} drivers")
    table.add_column("figure")
    table.add_column("Ray pipeline", justify="right")
    table.add_column("raw limit", justify="right")
    table.add_row("events/s", _n(result["events_per_s"]), _n(result["raw_events_per_s"]))
    table.add_row("ratio pipeline / raw", _n(result["ratio"], 3), "")
    table.add_row("elapsed, first poll → last durable (s)", _n(result["elapsed_s"], 1), _n(raw.get("elapsed_s"), 1))
    table.add_row("batch reading→durable p50 (ms)", _n(result["p50_persist_ms"]), _n(raw.get("p50_ms")))
    table.add_row("batch reading→durable p95 (ms)", _n(result["p95_persist_ms"]), _n(raw.get("p95_ms")))
    table.add_row("peak consumer lag", _n(result["peak_lag"]), "")
    table.add_row("peak RSS, MB (actors summed / raw process)", _n(result["rss_mb"]), _n(raw.get("rss_mb")))
    table.add_row("rows stored / distinct event ids",
                  f"{result['rows_stored']:,} / {result['distinct_event_ids']:,}", _n(raw.get("rows_stored")))
    table.add_row("final consumer lag", _n(result["final_lag"]), "")
    console.print(table)
    stages = Table(title=f"per-stage seconds (sums over actors; wall {result['elapsed_s']:.1f} s)")
    stages.add_column("stage")
    stages.add_column("seconds", justify="right")
    for key, seconds in result["stages_s"].items():
        stages.add_row(_stage_label(key), _n(seconds, 2))
    for key, seconds in raw.get("stages_s", {}).items():
        stages.add_row(f"raw limit: {key.removesuffix('_s')}", _n(seconds, 2))
    console.print(stages)
    console.print(_cpu_line("CPU seconds, pipeline", result["cpu_s"]), highlight=False)
    if raw.get("cpu_s"):
        console.print(_cpu_line("CPU seconds, raw limit", raw["cpu_s"]), highlight=False)


def _server(server: dict | None) -> str:
    if not server:
        return "—"
    return f"{server['wal_mb']:,.0f} MB of WAL, {server['checkpoints']} checkpoint(s) started"


def _stage_label(key: str) -> str:
    labels = {f"{kind}.{name}": text for kind, name, text in STAGES}
    return labels.get(key, key)


def _cpu_line(title: str, cpu: dict) -> str:
    parts = [f"{k} {v:,.1f}" for k, v in cpu.items() if k not in ("machine", "window_s", "other_top")]
    window, machine = cpu.get("window_s", 0), cpu.get("machine", 0)
    top = ", ".join(f"{k} {v:,.1f}" for k, v in cpu.get("other_top", {}).items())
    return (f"{title} over {window:.1f} s: " + ", ".join(parts) + f" (machine {machine:,.1f})"
            + (f"; other's top: {top}" if top else ""))


# -- BENCHMARKS.md -------------------------------------------------------------------------------------


def _markers(events: int) -> tuple[str, str]:
    return f"<!-- bench:ingest events={events} begin -->", f"<!-- bench:ingest events={events} end -->"


def machine_line(result: dict) -> str:
    """The machine and services a pipeline run had, and how busy the machine was before it (ingest, steady)."""
    m = result["machine"]
    return (f"Machine: {m['nproc']} CPUs ({m['cpu_model']}), {m['memory_gib']} GiB RAM; Python {m['python']}, "
            f"Ray {m['ray']}, {m['postgres']}, Redis {m['redis']} ({result['services']['redis']}), tansu broker "
            f"({result['services']['broker']}); before the run the machine was {m.get('cpu_busy_pct_before', '?')}% "
            f"busy (load average {m['loadavg_1m_before']}).")


def section_markdown(result: dict, png: Path | None, md_path: Path) -> str:
    m, raw, shape = result["machine"], result.get("raw") or {}, result["shape"]
    begin, end = _markers(result["events"])
    cpu, raw_cpu = result["cpu_s"], raw.get("cpu_s", {})
    wall = result["elapsed_s"]
    lines = [
        begin,
        f"### Ingest: {result['events']:,} readings, {result['drivers']:,} drivers — {result['date']}",
        "",
        f"Command: `{result['command']}`",
        "",
        machine_line(result),
        f"Pipeline: {shape['consumers']} consumer(s), {shape['shards']} shards, {shape['persistence']} persistence "
        f"actor(s), batches of {shape['batch_size']:,}, {shape['partitions']} partitions. Preload: "
        f"{result['preload_s']:.1f} s; actors up to first poll: {result['startup_s']:.1f} s (not timed).",
        "",
        "| figure | Ray pipeline | raw limit |",
        "|---|---:|---:|",
        f"| events/s | **{_n(result['events_per_s'])}** | {_n(result['raw_events_per_s'])} |",
        f"| ratio pipeline / raw | **{_n(result['ratio'], 3)}** | |",
        f"| elapsed, first poll → last durable | {wall:.1f} s | {_n(raw.get('elapsed_s'), 1)} s |",
        f"| batch reading→durable p50 / p95 | {_n(result['p50_persist_ms'])} / {_n(result['p95_persist_ms'])} ms "
        f"| {_n(raw.get('p50_ms'))} / {_n(raw.get('p95_ms'))} ms |",
        f"| peak consumer lag | {_n(result['peak_lag'])} | |",
        f"| peak RSS | {_n(result['rss_mb'])} MB (actors summed) | {_n(raw.get('rss_mb'))} MB |",
        "",
        f"Verified: telematics_events holds {result['rows_stored']:,} rows with {result['distinct_event_ids']:,} "
        f"distinct event ids (N = {result['events']:,}); stored offsets cover {result['durable_messages']:,}; "
        f"final consumer lag {result['final_lag']}; dead-lettered {result['dead_lettered']}; the raw limit stored "
        f"{_n(raw.get('rows_stored'))} rows. The pipeline also appended {result['domain_events']:,} domain events "
        f"and {result['trips']:,} trips.",
        "",
        f"PostgreSQL server during the drain: {_server(result.get('postgres_server'))} (pipeline), "
        f"{_server(raw.get('postgres_server'))} (raw limit); stock settings, shared by every database on it.",
        "",
        "Peak RSS per actor (MB): " + ", ".join(f"{k} {v:,.0f}" for k, v in result["rss_peak_mb"].items()) + ".",
        "",
        f"Per-stage seconds (sums over the actors of a kind; wall {wall:.1f} s):",
        "",
        "| stage | seconds | × wall |",
        "|---|---:|---:|",
        *(f"| {_stage_label(k)} | {v:,.2f} | {v / wall:.2f} |" for k, v in result["stages_s"].items()),
        *(f"| raw limit: {k.removesuffix('_s')} | {v:,.2f} | |" for k, v in raw.get("stages_s", {}).items()),
        "",
        f"CPU seconds by process ({cpu.get('window_s', 0):.1f} s window, {m['nproc']} CPUs; `other` = the "
        "rest of the machine's busy time):",
        "",
        "| process | pipeline | raw limit |",
        "|---|---:|---:|",
        *(f"| {k} | {v:,.1f} | {_n(raw_cpu.get(k), 1)} |" for k, v in cpu.items()
          if k not in ("window_s", "other_top")),
        "",
    ]
    strangers = {**cpu.get("other_top", {}), **{f"{k} (raw)": v for k, v in raw_cpu.get("other_top", {}).items()}}
    if strangers:
        lines += ["Largest processes in `other`: " + ", ".join(f"{k} {v:,.1f} s" for k, v in strangers.items()) + ".",
                  ""]
    if png is not None:
        rel = os.path.relpath(png, md_path.parent)
        lines += [f"![events/s over time, pipeline vs raw limit]({rel})", ""]
    lines.append(end)
    return "\n".join(lines)


def write_section(md_path: Path, section: str, events: int) -> str:
    """Replace the ingest section for `events` in place, or append it; returns 'replaced' or 'appended'."""
    return write_marked_section(md_path, section, *_markers(events))


def write_marked_section(md_path: Path, section: str, begin: str, end: str) -> str:
    """Replace the text between `begin` and `end` (markers included; `section` must carry them) in place,
    or append it; prose outside markers is kept. Returns 'replaced' or 'appended'."""
    text = md_path.read_text(encoding="utf-8") if md_path.exists() else _NEW_FILE
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.DOTALL)
    if pattern.search(text):
        text, how = pattern.sub(lambda _m: section, text, count=1), "replaced"
    else:
        text, how = text.rstrip("\n") + "\n\n" + section, "appended"
    md_path.parent.mkdir(parents=True, exist_ok=True)
    md_path.write_text(text.rstrip("\n") + "\n", encoding="utf-8")
    return how
