"""`report.md` and its PNGs for a trained model: Lorenz curves (model vs oracle) and decile calibration.

Everything is computed from out-of-fold predictions (each driver scored by a model that never saw them).
matplotlib runs on the Agg backend: no display needed.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from domain.risk_model.inputs import MODEL_INPUTS
from domain.risk_model.metrics import lorenz_curve
from domain.risk_model.rate_model import RateModel
from domain.risk_model.training import TrainingResult

LORENZ_PNG, CALIBRATION_PNG = "lorenz.png", "calibration.png"


def write_report(directory: Path, result: TrainingResult, model_version: str, command: str, timings: dict) -> Path:
    """Write report.md, lorenz.png and calibration.png into `directory`; returns the report's path."""
    _lorenz_png(directory / LORENZ_PNG, result)
    _calibration_png(directory / CALIBRATION_PNG, result)
    path = directory / "report.md"
    path.write_text(report_markdown(result, model_version, command, timings))
    return path


def report_markdown(result: TrainingResult, model_version: str, command: str, timings: dict) -> str:
    spec, m = result.spec, result.spec.metrics
    lines = [
        f"# Risk model {model_version}",
        "",
        f"Command: `{command}`  ",
        f"Family: **{spec.family}** (out-of-fold Poisson deviance: "
        + ", ".join(f"{k} {v:.4f}" for k, v in spec.candidates.items()) + ")  ",
        "Dataset: " + ", ".join(f"{k} {v:g}" for k, v in spec.dataset.items()) + "  ",
        f"Prior (portfolio claim frequency): {spec.prior_rate:.4f} claims/year  ",
        "Timings (s): " + ", ".join(f"{k} {v:.1f}" for k, v in timings.items()),
        "",
        "## Metrics (out-of-fold, every driver held out once)",
        "",
        "| metric | value | meaning |",
        "|---|---:|---|",
        f"| gini | {m['gini']:.4f} | model's normalized Gini vs realized claims |",
        f"| oracle_gini | {m['oracle_gini']:.4f} | true λ's normalized Gini vs the same claims |",
        f"| gini_ratio | {m['gini_ratio']:.4f} | gini / oracle_gini (acceptance ≥ 0.90) |",
        f"| gini_vs_truth | {m['gini_vs_truth']:.4f} | model's normalized Gini vs the true λ |",
        f"| poisson_deviance | {m['poisson_deviance']:.4f} | model, mean per policy-year |",
        f"| oracle_poisson_deviance | {m['oracle_poisson_deviance']:.4f} | true λ |",
        f"| null_poisson_deviance | {m['null_poisson_deviance']:.4f} | prior only |",
        "",
        f"![Lorenz curves]({LORENZ_PNG})",
        "",
        "## Calibration by decile of predicted rate (claims/year)",
        "",
        "| decile | drivers | predicted | true | observed |",
        "|---:|---:|---:|---:|---:|",
    ]
    lines += [f"| {r['decile']} | {r['drivers']} | {r['predicted_rate']:.4f} | {r['true_rate']:.4f} | "
              f"{r['observed_rate']:.4f} |" for r in result.deciles]
    lines += ["", f"![Calibration]({CALIBRATION_PNG})", ""]
    if spec.family == "glm":
        beta = RateModel("glm", result.estimator)._beta
        lines += ["## GLM coefficients (per unit of log(input + offset))", "", "| input | coefficient | offset |",
                  "|---|---:|---:|"]
        lines += [f"| {name} | {b:+.4f} | {o:.4g} |" for name, b, o in zip(MODEL_INPUTS, beta, spec.input_offsets,
                                                                            strict=True)]
        lines.append("")
    return "\n".join(lines)


def _lorenz_png(path: Path, result: TrainingResult) -> None:
    oof = result.out_of_fold
    fig, ax = plt.subplots(figsize=(6, 5))
    for label, ranking in (("model", oof.predicted_rate), ("oracle (true λ)", oof.true_rate)):
        x, y = lorenz_curve(oof.claims, ranking)
        ax.plot(x, y, label=label)
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", label="random")
    ax.set_xlabel("share of drivers, riskiest predicted first")
    ax.set_ylabel("share of claims")
    m = result.spec.metrics
    ax.set_title(f"Lorenz: gini {m['gini']:.3f} vs oracle {m['oracle_gini']:.3f}")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _calibration_png(path: Path, result: TrainingResult) -> None:
    rows = result.deciles
    fig, ax = plt.subplots(figsize=(6, 4))
    x = [r["decile"] for r in rows]
    for key, label in (("predicted_rate", "predicted"), ("true_rate", "true λ"), ("observed_rate", "observed")):
        ax.plot(x, [r[key] for r in rows], marker="o", label=label)
    ax.set_xlabel("decile of predicted rate (1 = safest)")
    ax.set_ylabel("claims per year")
    ax.set_title("Calibration by decile (out-of-fold)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
