"""Figures from scores.csv and stats.csv (seaborn), one fixed colour per recipe across every figure.

- ``curves_<suite>.png``: per-task learning curves, raw score vs frames, mean over seeds with a 95% CI band.
- ``aggregate_iqm.png``: normalized IQM along training per suite, with its stratified-bootstrap 95% CI band.
- ``final_metrics.png``: IQM, median, mean and optimality gap at the final evaluation, with 95% CIs.

    python -m ML.benchmarking.plots --scores results/default/scores.csv --stats results/default/stats.csv \
        --out results/default/plots
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from ML.benchmarking.stats import FINAL, METRICS, curves, read_stats  # noqa: E402
from ML.fileio import atomic_write  # noqa: E402

PALETTE = "colorblind"
TITLES = {"iqm": "IQM", "median": "Median", "mean": "Mean", "optimality_gap": "Optimality gap"}


def figure_names(suites) -> list[str]:
    """The files ``draw`` writes for these suites (the pipeline declares them as outputs)."""
    return [f"curves_{safe(s)}.png" for s in sorted(set(suites))] + ["aggregate_iqm.png", "final_metrics.png"]


def safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.+-]", "_", str(name))


def _labels(frame: pd.DataFrame, several: bool) -> pd.Series:
    """The legend entry of each row: the recipe, or ``recipe (experiment)`` when several experiments mix."""
    if several:
        return frame["recipe"].astype(str) + " (" + frame["experiment"].astype(str) + ")"
    return frame["recipe"].astype(str)


def palette(labels) -> dict[str, tuple]:
    labels = sorted(set(labels))
    return dict(zip(labels, sns.color_palette(PALETTE, max(len(labels), 1)), strict=False))


def _save(fig, path: Path) -> Path:
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight"))
    plt.close(fig)
    return path


def _empty(path: Path, title: str, message: str) -> Path:
    fig, ax = plt.subplots(figsize=(5, 3))
    ax.set_axis_off()
    ax.set_title(title)
    ax.text(0.5, 0.5, message, ha="center", va="center", wrap=True, transform=ax.transAxes)
    return _save(fig, path)


def learning_curves(scores: pd.DataFrame, suite: str, path: Path, colors: dict) -> Path:
    rows = scores[scores["suite"] == suite].copy()
    if rows.empty:
        return _empty(path, f"{suite}: learning curves", "no complete runs")
    rows["x"] = rows["frame"].where(rows["frame"].notna(), rows["step"])
    tasks = sorted(rows["task"].unique())
    cols = min(len(tasks), 4)
    nrows = -(-len(tasks) // cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(4.2 * cols, 3.2 * nrows), squeeze=False)
    for ax, task in zip(axes.flat, tasks, strict=False):
        sns.lineplot(data=rows[rows["task"] == task], x="x", y="score", hue="label", palette=colors,
                     errorbar=("ci", 95), n_boot=500, seed=0, ax=ax, marker="o", markersize=3)
        n = rows[rows["task"] == task].groupby(["label", "seed"]).ngroups
        ax.set_title(f"{task} ({n} run{'s' if n != 1 else ''})")
        ax.set_xlabel("frames")
        ax.set_ylabel("score")
        ax.legend(title=None, fontsize=8)
    for ax in list(axes.flat)[len(tasks):]:
        ax.set_axis_off()
    fig.suptitle(f"{suite}: evaluation score vs frames (mean over seeds, 95% CI)")
    fig.tight_layout()
    return _save(fig, path)


def aggregate_curve(stats: pd.DataFrame, path: Path, colors: dict, metric: str = "iqm") -> Path:
    rows = curves(stats)
    rows = rows[rows["metric"] == metric]
    if rows.empty:
        return _empty(path, f"normalized {TITLES[metric]}", "no normalized scores along training")
    suites = sorted(rows["suite"].unique(), key=lambda s: (s == "all", s))
    fig, axes = plt.subplots(1, len(suites), figsize=(4.5 * len(suites), 3.4), squeeze=False)
    for ax, suite in zip(axes.flat, suites, strict=True):
        for label, g in rows[rows["suite"] == suite].groupby("label", sort=True):
            g = g.sort_values("step")
            ax.plot(g["step"], g["value"], marker="o", markersize=3, color=colors[label], label=label)
            ax.fill_between(g["step"], g["ci_low"], g["ci_high"], color=colors[label], alpha=0.25, linewidth=0)
        ax.set_title(suite)
        ax.set_xlabel("step")
        ax.set_ylabel(f"normalized {TITLES[metric]}")
        ax.legend(fontsize=8)
    fig.suptitle(f"Normalized {TITLES[metric]} along training (95% stratified bootstrap CI)")
    fig.tight_layout()
    return _save(fig, path)


def final_metrics(stats: pd.DataFrame, path: Path, colors: dict) -> Path:
    rows = stats[stats["step"].astype(str) == FINAL]
    if rows.empty:
        return _empty(path, "final metrics", "no normalized scores")
    rows = rows.assign(row=rows["label"] + " · " + rows["suite"].astype(str))
    order = sorted(rows["row"].unique())
    fig, axes = plt.subplots(1, len(METRICS), figsize=(3.6 * len(METRICS), 0.5 * len(order) + 1.4),
                             squeeze=False, sharey=True)
    for ax, metric in zip(axes.flat, METRICS, strict=True):
        m = rows[rows["metric"] == metric].set_index("row")
        for y, name in enumerate(order):
            if name not in m.index:
                continue
            r = m.loc[name]
            color = colors[r["label"]]
            ax.barh(y, r["ci_high"] - r["ci_low"], left=r["ci_low"], height=0.6, color=color, alpha=0.45)
            ax.plot([r["value"]], [y], marker="|", markersize=14, color="black")
        ax.set_yticks(range(len(order)), order)
        ax.set_title(TITLES[metric])
        ax.set_xlabel("normalized score")
    fig.suptitle("Final evaluation: point estimate and 95% stratified bootstrap CI")
    fig.tight_layout()
    return _save(fig, path)


def draw(scores: pd.DataFrame, stats: pd.DataFrame, out_dir: str | Path, suites=None, log=print) -> list[Path]:
    """Every figure for these scores and stats into ``out_dir``; ``suites`` defaults to those in scores."""
    out_dir = Path(out_dir)
    suites = sorted(set(suites if suites is not None else scores["suite"].unique()))
    several = len(set(scores["experiment"]) | set(stats["experiment"])) > 1
    scores = scores.assign(label=_labels(scores, several))
    stats = stats.assign(label=_labels(stats, several))
    colors = palette([*scores["label"], *stats["label"]])
    written = []
    with sns.axes_style("whitegrid"):
        for suite in suites:
            written.append(learning_curves(scores, suite, out_dir / f"curves_{safe(suite)}.png", colors))
        written.append(aggregate_curve(stats, out_dir / "aggregate_iqm.png", colors))
        written.append(final_metrics(stats, out_dir / "final_metrics.png", colors))
    log(f"plots: {len(written)} figures -> {out_dir}/ ({', '.join(p.name for p in written)})")
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ML.benchmarking.plots", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scores", required=True)
    parser.add_argument("--stats", required=True)
    parser.add_argument("--out", required=True, help="folder of the figures")
    parser.add_argument("--suites", nargs="*", default=None, help="draw these suites' curves (default: all)")
    args = parser.parse_args(argv)
    draw(pd.read_csv(args.scores), read_stats(args.stats), args.out, args.suites)
    return 0


if __name__ == "__main__":
    sys.exit(main())
