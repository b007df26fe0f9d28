"""The throughput-over-time chart of a run: pipeline and raw limit on one PNG (matplotlib, no display)."""

from __future__ import annotations

from pathlib import Path

from autoins.bench.sampling import Timeline


def throughput_png(path: Path, title: str, pipeline: Timeline, pipeline_avg: float,
                   raw: Timeline | None, raw_avg: float | None) -> Path:
    """events/s over a trailing 2 s window against seconds since each run's first poll; dashed lines
    are the runs' averages (N / elapsed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 4.5), dpi=110)
    series = [("Ray pipeline", pipeline, pipeline_avg, "tab:blue")]
    if raw is not None and raw_avg is not None:
        series.append(("raw limit (1 process, no Ray)", raw, raw_avg, "tab:orange"))
    for label, timeline, average, colour in series:
        points = timeline.rates(window_s=2.0)
        if points:
            ax.plot([t for t, _ in points], [r / 1000 for _, r in points], color=colour, linewidth=1.4,
                    label=f"{label}: {average:,.0f} events/s average")
        ax.axhline(average / 1000, color=colour, linestyle="--", linewidth=0.9)
    ax.set_xlabel("seconds since the first poll")
    ax.set_ylabel("thousand events/s (trailing 2 s)")
    ax.set_title(title)
    ax.set_ylim(bottom=0)
    ax.set_xlim(left=0)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
