"""Figures from scores.csv and the tables of ``ML.benchmarking.analysis`` (seaborn), one fixed colour per
recipe across every figure, each as PNG and SVG:

- ``curves_<suite>``: per-task learning curves, raw score vs frames, mean over seeds with a 95% CI band
  (normal approximation); DMC tasks also show DrQ-v2's published curve, labelled with its protocol.
- ``curves_time_<suite>``: the same against wall-clock time (mean time of each evaluation over seeds).
- ``aggregate_iqm``: normalized IQM along training per suite, with its stratified-bootstrap CI band.
- ``intervals``: IQM, median, mean and optimality gap of the final scores, with CIs (interval estimates);
  an Atari suite also shows the published Atari-100k aggregates, labelled with their protocol.
- ``performance_profile``: fraction of runs above each normalized score τ, with bootstrap bands.
- ``poi``: probability of improvement P(row > column) for every pair of recipes, per suite.
- ``together``: per task trained together with others, the normalized IQM of the runs together and alone,
  with CIs and the verdict (helped / hurt / no difference / cannot be told; ``ML.benchmarking.together``).

    python -m ML.benchmarking.cli plots --scores results/default/scores.csv --tables results/default \
        --out results/default/plots [--cells results/default/cells.csv] [--summary results/default/summary.md]
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
matplotlib.rcParams["svg.fonttype"] = "none"

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from ML.benchmarking import analysis, references, together  # noqa: E402
from ML.benchmarking.published import is_published  # noqa: E402
from ML.benchmarking.stats import FINAL, METRICS, MIN_RUNS, curves, labelled  # noqa: E402
from ML.fileio import atomic_write  # noqa: E402
from ML.progress import counted  # noqa: E402

PALETTE = "colorblind"
TITLES = {"iqm": "IQM", "median": "Median", "mean": "Mean", "optimality_gap": "Optimality gap"}


FORMATS = ("png", "svg")
AGGREGATE_FIGURES = ["aggregate_iqm", "intervals", "performance_profile", "poi", "together"]


def figure_stems(suites) -> list[str]:
    suites = sorted(set(suites))
    return ([f"curves_{safe(s)}" for s in suites] + [f"curves_time_{safe(s)}" for s in suites]
            + AGGREGATE_FIGURES)


def figure_names(suites) -> list[str]:
    """The PNG files ``draw`` writes for these suites (each has an SVG twin, see ``figure_files``)."""
    return [f"{stem}.png" for stem in figure_stems(suites)]


def figure_files(suites) -> list[str]:
    """Every file ``draw`` writes for these suites (the pipeline declares them as outputs)."""
    return [f"{stem}.{ext}" for stem in figure_stems(suites) for ext in FORMATS]


def safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.+-]", "_", str(name))


def palette(labels) -> dict[str, tuple]:
    labels = sorted(set(labels))
    return dict(zip(labels, sns.color_palette(PALETTE, max(len(labels), 1)), strict=False))


def _save(fig, path: Path) -> Path:
    """``path`` (.png) and its .svg twin, each written completely or not at all."""
    for ext in FORMATS:
        def write(tmp: Path, ext: str = ext) -> None:
            fig.savefig(tmp, format=ext, dpi=110, bbox_inches="tight")

        atomic_write(path.with_suffix(f".{ext}"), write)
    plt.close(fig)
    return path


def _empty(path: Path, title: str, message: str) -> Path:
    fig, ax = plt.subplots(figsize=(5, 3))
    ax.set_axis_off()
    ax.set_title(title)
    ax.text(0.5, 0.5, message, ha="center", va="center", wrap=True, transform=ax.transAxes)
    return _save(fig, path)


def _grid(n: int, width: float = 4.2, height: float = 3.2):
    cols = min(max(n, 1), 4)
    nrows = -(-max(n, 1) // cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(width * cols, height * nrows), squeeze=False)
    for ax in list(axes.flat)[n:]:
        ax.set_axis_off()
    return fig, axes


def _published_note(labels) -> str:
    """A title line naming the published Atari-100k entries among ``labels`` (DrQ-v2's has its own)."""
    names = sorted(str(x) for x in set(labels) if is_published(x) and x != references.DRQV2_LABEL)
    return f"\n{', '.join(names)}: published runs on the same games (rliable's Atari-100k data)" if names else ""


def _mean_band(rows: pd.DataFrame, x: str) -> pd.DataFrame:
    """Per label and step: x (mean over seeds), mean score and a 95% normal-approximation CI (none below
    ``MIN_RUNS`` seeds)."""
    g = rows.groupby(["label", "step"], sort=True)
    out = g.agg(x=(x, "mean"), mean=("score", "mean"), sd=("score", "std"), n=("score", "size")).reset_index()
    half = (1.96 * out["sd"] / np.sqrt(out["n"])).where(out["n"] >= MIN_RUNS)
    return out.assign(low=out["mean"] - half, high=out["mean"] + half)


def frame_axis(suite: str) -> str:
    """The x label of a curve over frames: env frames (agent steps x action repeat), or samples for datasets."""
    return "training samples" if suite in ("Classify", "Generate") else "env frames"


def learning_curves(scores: pd.DataFrame, suite: str, path: Path, colors: dict, x: str = "frame",
                    reference_label: str | None = None) -> Path:
    """Per-task curves; ``reference_label`` set: DrQ-v2's published mean curve drawn beside (DMC only, when
    the runs' protocol matches it and DrQ-v2's own seeds are not already an entry)."""
    rows = scores[scores["suite"] == suite]
    axis = {"frame": frame_axis(suite), "time": "wall-clock time (s)"}[x]
    if rows.empty:
        return _empty(path, f"{suite}: learning curves", "no complete runs")
    rows = rows.assign(frame=rows["frame"].where(rows["frame"].notna(), rows["step"]))
    tasks = sorted(rows["task"].unique())
    published = references.dmc_published() if suite == "DMC" and x == "frame" and reference_label else None
    fig, axes = _grid(len(tasks))
    for ax, (task, task_rows) in zip(axes.flat, rows.groupby("task", sort=True), strict=False):
        for label, g in _mean_band(task_rows, x).groupby("label", sort=True):
            ax.plot(g["x"], g["mean"], color=colors[label], label=label, marker="o", markersize=2, linewidth=1.4)
            ax.fill_between(g["x"], g["low"], g["high"], color=colors[label], alpha=0.2, linewidth=0)
        if published is not None:
            ref = published[published["task"] == task]
            if len(ref):
                ax.plot(ref["frame_measured"], ref["mean_return"], color="black", linestyle="--", marker="s",
                        markersize=3, linewidth=1, label="DrQ-v2 published mean")
        n = task_rows.groupby(["label", "seed"]).ngroups
        ax.set_title(f"{task} ({n} run{'s' if n != 1 else ''})", fontsize=10)
        ax.set_xlabel(axis)
        ax.set_ylabel("score")
        ax.legend(fontsize=7)
    title = f"{suite}: evaluation score vs {axis} (mean over seeds, 95% CI)"
    if published is not None or (rows["recipe"] == references.DRQV2_LABEL).any():
        title += f"\nDrQ-v2: {reference_label or references.DMC_PROTOCOL}"
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def _with_frames(rows: pd.DataFrame, scores: pd.DataFrame) -> pd.DataFrame:
    """stats rows along training with ``frame``: the mean env frame of the group's evaluations at that step."""
    frames = scores.groupby(["experiment", "recipe", "suite", "step"])["frame"].mean()
    every = scores.groupby(["experiment", "recipe", "step"])["frame"].mean()  # suite "all"
    def frame(r) -> float:
        key = (r.experiment, r.recipe, r.suite, r.step)
        return float(frames.get(key, every.get((r.experiment, r.recipe, r.step), np.nan)))
    return rows.assign(frame=[frame(r) for r in rows.itertuples(index=False)])


def aggregate_curve(stats: pd.DataFrame, path: Path, colors: dict, metric: str = "iqm",
                    scores: pd.DataFrame | None = None) -> Path:
    rows = curves(stats)
    rows = rows[rows["metric"] == metric]
    if scores is not None and len(rows):
        rows = _with_frames(rows, scores)
    x = "frame" if "frame" in rows else "step"
    if rows.empty:
        return _empty(path, f"normalized {TITLES[metric]}", "no normalized scores along training")
    suites = sorted(rows["suite"].unique(), key=lambda s: (s == "all", s))
    fig, axes = plt.subplots(1, len(suites), figsize=(4.5 * len(suites), 3.4), squeeze=False)
    for ax, suite in zip(axes.flat, suites, strict=True):
        for label, g in rows[rows["suite"] == suite].groupby("label", sort=True):
            g = g.sort_values("step")
            ax.plot(g[x], g["value"], marker="o", markersize=2, color=colors[label], label=label)
            ax.fill_between(g[x], g["ci_low"], g["ci_high"], color=colors[label], alpha=0.25, linewidth=0)
        ax.set_title(suite)
        ax.set_xlabel((frame_axis(suite) + (" (mean over suites)" if suite == "all" else "")) if x == "frame"
                      else "step")
        ax.set_ylabel(f"normalized {TITLES[metric]}")
        ax.legend(fontsize=8)
    fig.suptitle(f"Normalized {TITLES[metric]} along training (95% stratified bootstrap CI)")
    fig.tight_layout()
    return _save(fig, path)


def intervals(stats: pd.DataFrame, path: Path, colors: dict, atari_label: str | None = None) -> Path:
    rows = stats[stats["step"].astype(str) == FINAL]
    if rows.empty:
        return _empty(path, "final metrics", "no normalized scores")
    rows = rows.assign(row=rows["label"] + " · " + rows["suite"].astype(str))
    order = sorted(rows["row"].unique())
    published = references.atari100k_published() if "Atari" in set(rows["suite"]) and atari_label else None
    fig, axes = plt.subplots(1, len(METRICS), figsize=(3.6 * len(METRICS), 0.5 * len(order) + 1.6),
                             squeeze=False, sharey=True)
    for ax, metric in zip(axes.flat, METRICS, strict=True):
        m = rows[rows["metric"] == metric].set_index("row")
        for y, name in enumerate(order):
            if name not in m.index:
                continue
            r = m.loc[name]
            if np.isnan(r["ci_low"]):  # too few runs: the point alone, marked
                ax.annotate("CI n/a", (r["value"], y), textcoords="offset points", xytext=(6, -3), fontsize=7)
            else:
                ax.barh(y, r["ci_high"] - r["ci_low"], left=r["ci_low"], height=0.6, color=colors[r["label"]],
                        alpha=0.55)
            ax.plot([r["value"]], [y], marker="|", markersize=14, color="black")
        if published is not None and metric in ("mean", "median"):
            for i, ref in enumerate(published.itertuples(index=False)):
                value = ref.hns_mean if metric == "mean" else ref.hns_median
                ax.axvline(value, color="grey", linestyle=":", linewidth=0.8)
                ax.text(value, len(order) - 0.4 + 0.35 * (i % 3), ref.algorithm, fontsize=6, rotation=90,
                        va="bottom", ha="center", color="dimgrey")
        ax.set_yticks(range(len(order)), order)
        ax.set_title(TITLES[metric])
        ax.set_xlabel("normalized score")
    title = f"Final scores: point estimate and 95% stratified bootstrap CI (n/a below {MIN_RUNS} runs per task)"
    if published is not None:
        title += f"\nAtari dotted lines: {atari_label}"
    if (rows["recipe"] == references.DRQV2_LABEL).any():
        title += f"\n{references.DRQV2_LABEL}: DrQ-v2's own seeds, {references.DRQV2_SOURCE}"
    title += _published_note(rows["recipe"])
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def performance_profile(profiles: pd.DataFrame, path: Path, colors: dict) -> Path:
    if profiles.empty:
        return _empty(path, "performance profile", "no normalized final scores")
    suites = sorted(profiles["suite"].unique(), key=lambda s: (s == "all", s))
    fig, axes = plt.subplots(1, len(suites), figsize=(4.5 * len(suites), 3.4), squeeze=False)
    for ax, suite in zip(axes.flat, suites, strict=True):
        for label, g in profiles[profiles["suite"] == suite].groupby("label", sort=True):
            ax.plot(g["tau"], g["value"], color=colors[label], label=label)
            ax.fill_between(g["tau"], g["ci_low"], g["ci_high"], color=colors[label], alpha=0.2, linewidth=0)
        ax.set_title(suite)
        ax.set_xlabel("normalized score τ")
        ax.set_ylabel("fraction of runs with score > τ")
        ax.set_ylim(-0.02, 1.02)
        ax.legend(fontsize=8)
    fig.suptitle("Performance profiles of the final scores (95% stratified bootstrap bands)")
    fig.tight_layout()
    return _save(fig, path)


def poi_matrix(pairs: pd.DataFrame, path: Path) -> Path:
    if pairs.empty:
        return _empty(path, "probability of improvement", "fewer than two recipes on a common suite")
    suites = sorted(pairs["suite"].unique())
    size = max(len(set(pairs["x"]) | set(pairs["y"])), 2)
    fig, axes = plt.subplots(1, len(suites), figsize=(1.1 * size * len(suites) + 2.5, 1.0 * size + 1.8),
                             squeeze=False)
    for ax, suite in zip(axes.flat, suites, strict=True):
        rows = pairs[pairs["suite"] == suite]
        labels = sorted(set(rows["x"]) | set(rows["y"]))
        matrix = pd.DataFrame(np.nan, index=labels, columns=labels)
        notes = pd.DataFrame("", index=labels, columns=labels)
        for r in rows.itertuples(index=False):
            matrix.loc[r.x, r.y], matrix.loc[r.y, r.x] = r.poi, 1 - r.poi
            if np.isnan(r.poi):  # different budgets or protocols: never compared
                notes.loc[r.x, r.y] = notes.loc[r.y, r.x] = r.verdict.replace(" ", "\n")
            elif np.isnan(r.ci_low):  # too few runs: no interval
                notes.loc[r.x, r.y], notes.loc[r.y, r.x] = f"{r.poi:.2f}\nCI n/a", f"{1 - r.poi:.2f}\nCI n/a"
            else:
                notes.loc[r.x, r.y] = f"{r.poi:.2f}\n[{r.ci_low:.2f}, {r.ci_high:.2f}]"
                notes.loc[r.y, r.x] = f"{1 - r.poi:.2f}\n[{1 - r.ci_high:.2f}, {1 - r.ci_low:.2f}]"
        sns.heatmap(matrix, annot=notes, fmt="", vmin=0, vmax=1, cmap="RdBu", center=0.5, ax=ax, cbar=True,
                    annot_kws={"fontsize": 7}, square=True)
        ax.set_title(suite)
        ax.set_xlabel("Y")
        ax.set_ylabel("X")
    title = f"Probability of improvement P(X > Y) with 95% CI (n/a below {MIN_RUNS} runs per task)"
    if references.DRQV2_LABEL in set(pairs["x"]) | set(pairs["y"]):
        title += f"\n{references.DRQV2_LABEL}: DrQ-v2's own seeds, {references.DRQV2_SOURCE}"
    title += _published_note(set(pairs["y"]))
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def together_vs_alone(table: pd.DataFrame, path: Path) -> Path:
    """Per task trained together: both arms' normalized IQM with its CI (a point alone, "CI n/a", below
    ``MIN_RUNS`` runs), titled with the verdict."""
    if table.empty:
        return _empty(path, "together vs alone", "no tasks trained together in the grid")
    fig, axes = _grid(len(table), width=5.0, height=2.8)
    colors = dict(zip(("together", "alone"), sns.color_palette(PALETTE, 2), strict=True))
    for ax, r in zip(axes.flat, table.itertuples(index=False), strict=False):
        arms = [("together", r.together_iqm, r.together_low, r.together_high, r.n_together),
                ("alone", r.alone_iqm, r.alone_low, r.alone_high, r.n_alone)]
        for y, (arm, value, low, high, n) in enumerate(arms):
            if int(n) == 0:
                ax.text(0.5, y, "no runs", va="center", ha="center", transform=ax.get_yaxis_transform())
                continue
            ci = not np.isnan(low)
            ax.errorbar([value], [y], xerr=[[value - low], [high - value]] if ci else None, fmt="o", capsize=4,
                        color=colors[arm])
            ax.annotate(f"n = {int(n)}" + ("" if ci else ", CI n/a"), (value, y), textcoords="offset points",
                        xytext=(0, 7), ha="center", fontsize=7)
        ax.set_yticks([0, 1], ["together", "alone"])
        ax.set_ylim(-0.6, 1.6)
        ax.set_xlabel("normalized IQM")
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(4))
        ax.margins(x=0.2)
        verdict = r.verdict if r.verdict != "cannot be told" else f"cannot be told ({r.why})"
        ax.set_title(f"{r.task}: {r.recipe} with {together.partners(r.together, r.task)}\n{verdict}"
                     + ("" if np.isnan(r.poi) else f"\nP(together > alone) = {r.poi:.2f}"), fontsize=9)
    fig.suptitle("Trained together vs alone at the same budget per task (95% stratified bootstrap CI)", fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def draw(scores: pd.DataFrame, frames: dict, out_dir: str | Path, suites=None, cells: pd.DataFrame | None = None,
         log=print, progress: Any = "auto") -> list[Path]:
    """Every figure into ``out_dir`` from the scores and the tables of ``analysis.tables`` (``frames``:
    stats, profiles, comparisons); ``suites`` defaults to those in scores. Returns the PNG paths.
    ``progress``: figures drawn of the total, with rate and ETA (``ML.progress.mode``)."""
    out_dir = Path(out_dir)
    stats, profiles = frames["stats"], frames["profiles"]
    suites = sorted(set(suites if suites is not None else scores["suite"].unique()))
    several = len(set(scores["experiment"]) | set(stats["experiment"])) > 1
    scores = scores.assign(label=labelled(scores, several))
    stats = stats.assign(label=labelled(stats, several))
    profiles = profiles.assign(label=labelled(profiles, several)) if len(profiles) else profiles.assign(label=[])
    colors = palette([*scores["label"], *stats["label"]])
    status = analysis.reference_status(scores, cells)  # a reference is drawn only beside runs that match it
    own_seeds = (scores["recipe"] == references.DRQV2_LABEL).any()
    dmc_label = references.DMC_PROTOCOL if status.get("DMC", {}).get("matched") and not own_seeds else None
    atari_label = references.ATARI100K_PROTOCOL if status.get("Atari", {}).get("matched") else None
    figures: list[Callable[[], Path]] = [
        *(partial(learning_curves, scores, suite, out_dir / f"curves_{safe(suite)}.png", colors,
                  reference_label=dmc_label) for suite in suites),
        *(partial(learning_curves, scores, suite, out_dir / f"curves_time_{safe(suite)}.png", colors, "time")
          for suite in suites),
        partial(aggregate_curve, stats, out_dir / "aggregate_iqm.png", colors, scores=scores),
        partial(intervals, stats, out_dir / "intervals.png", colors, atari_label),
        partial(performance_profile, profiles, out_dir / "performance_profile.png", colors),
        partial(poi_matrix, frames["comparisons"], out_dir / "poi.png"),
        partial(together_vs_alone, frames.get("together", pd.DataFrame()), out_dir / "together.png"),
    ]
    with sns.axes_style("whitegrid"):
        written = [figure() for figure in counted(figures, "plots: drawing figures", "figures", progress)]
    log(f"plots: {len(written)} figures (PNG + SVG) -> {out_dir}/ ({', '.join(p.name for p in written)})")
    return written


def read_cells(path: str | Path | None) -> pd.DataFrame | None:
    if path is None or not Path(path).is_file():
        return None
    return pd.read_csv(path)
