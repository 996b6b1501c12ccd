"""Aggregate metrics with stratified-bootstrap confidence intervals (rliable's definitions, numpy only).

- IQM: the 25% trimmed mean of all runs × tasks normalized scores (flattened).
- median, mean: of the per-task mean scores (mean over runs).
- optimality gap (γ = 1): mean of max(0, 1 − score) over all runs × tasks.
- CI: stratified bootstrap (runs resampled with replacement within each task, same count), percentile method.

``stats.csv``: ``experiment, recipe, suite, step, metric, value, ci_low, ci_high``. ``step`` is ``final``
for each run's last evaluation, else an evaluation step common to every run of the group (the curve).
A recipe evaluated on several suites also gets the suite ``all`` (every task of every suite).

    python -m ML.benchmarking.stats --scores results/default/scores.csv --out results/default/stats.csv
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats as sps

from ML.benchmarking.scores import write_csv

COLUMNS = ["experiment", "recipe", "suite", "step", "metric", "value", "ci_low", "ci_high"]
METRICS = ("iqm", "median", "mean", "optimality_gap")
FINAL = "final"


# Each metric reads (flat, task_means): all runs × tasks scores [..., N] and per-task means [..., T].
def _iqm(flat: np.ndarray, task_means: np.ndarray) -> np.ndarray:
    return sps.trim_mean(flat, 0.25, axis=-1)


def _median(flat: np.ndarray, task_means: np.ndarray) -> np.ndarray:
    return np.median(task_means, axis=-1)


def _mean(flat: np.ndarray, task_means: np.ndarray) -> np.ndarray:
    return np.mean(task_means, axis=-1)


def _optimality_gap(flat: np.ndarray, task_means: np.ndarray, gamma: float = 1.0) -> np.ndarray:
    return np.mean(np.maximum(0.0, gamma - flat), axis=-1)


AGGREGATES: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "iqm": _iqm, "median": _median, "mean": _mean, "optimality_gap": _optimality_gap,
}


def _as_tasks(scores: np.ndarray | Sequence[np.ndarray]) -> list[np.ndarray]:
    """Per-task arrays of run scores from a [runs, tasks] matrix or a list of 1-D arrays (ragged allowed)."""
    if isinstance(scores, np.ndarray):
        scores = scores.reshape(-1, 1) if scores.ndim == 1 else scores
        return [np.asarray(scores[:, t], dtype=float) for t in range(scores.shape[1])]
    tasks = [np.asarray(s, dtype=float).ravel() for s in scores]
    if not tasks or any(t.size == 0 for t in tasks):
        raise ValueError("every task needs at least one run score")
    return tasks


def aggregate(scores: np.ndarray | Sequence[np.ndarray], metric: str) -> float:
    """A point estimate. ``scores``: [runs, tasks] matrix, or one array of run scores per task."""
    tasks = _as_tasks(scores)
    flat = np.concatenate(tasks)
    task_means = np.array([t.mean() for t in tasks])
    return float(AGGREGATES[metric](flat, task_means))


def iqm(scores) -> float:
    return aggregate(scores, "iqm")


def median(scores) -> float:
    return aggregate(scores, "median")


def mean(scores) -> float:
    return aggregate(scores, "mean")


def optimality_gap(scores) -> float:
    return aggregate(scores, "optimality_gap")


def bootstrap(scores: np.ndarray | Sequence[np.ndarray], metrics: Sequence[str] = METRICS, reps: int = 2000,
              seed: int = 0, ci: float = 0.95) -> dict[str, tuple[float, float, float]]:
    """{metric: (point estimate, ci_low, ci_high)} with a stratified bootstrap, vectorized over reps.

    Within each task the runs are resampled with replacement (index array [reps, runs]); the same resamples
    serve every metric. Seeded: the same inputs and seed give the same intervals."""
    tasks = _as_tasks(scores)
    rng = np.random.default_rng(seed)
    samples = [t[rng.integers(0, t.size, size=(reps, t.size))] for t in tasks]  # each [reps, runs_t]
    flat = np.concatenate(samples, axis=1)  # [reps, N]
    task_means = np.stack([s.mean(axis=1) for s in samples], axis=1)  # [reps, T]
    point_flat = np.concatenate(tasks)
    point_means = np.array([t.mean() for t in tasks])
    alpha = 100 * (1 - ci) / 2
    out = {}
    for metric in metrics:
        fn = AGGREGATES[metric]
        low, high = np.percentile(fn(flat, task_means), [alpha, 100 - alpha])
        out[metric] = (float(fn(point_flat, point_means)), float(low), float(high))
    return out


def _groups(scores: pd.DataFrame):
    """(experiment, recipe, suite, frame) per group, plus suite ``all`` for recipes on several suites."""
    for (experiment, recipe), by_recipe in scores.groupby(["experiment", "recipe"], sort=True):
        suites = sorted(by_recipe["suite"].unique())
        for suite in suites:
            yield experiment, recipe, suite, by_recipe[by_recipe["suite"] == suite]
        if len(suites) > 1:
            yield experiment, recipe, "all", by_recipe


def _task_arrays(rows: pd.DataFrame) -> list[np.ndarray]:
    return [g["normalized"].to_numpy(float) for _, g in rows.groupby(["suite", "task"], sort=True)]


def compute(scores: pd.DataFrame, reps: int = 2000, seed: int = 0, ci: float = 0.95, log=print) -> pd.DataFrame:
    """stats.csv rows from a scores.csv frame: final metrics and curves over the common evaluation steps."""
    records = []
    usable = scores.dropna(subset=["normalized"])
    left_out = scores[scores["normalized"].isna()][["experiment", "recipe", "suite", "task"]].drop_duplicates()
    for row in left_out.itertuples(index=False):
        log(f"stats: {row.experiment}/{row.recipe}/{row.suite}/{row.task} has no normalized scores "
            "(no reference); left out of the aggregates")
    for experiment, recipe, suite, rows in _groups(usable):
        cell_keys = ["suite", "task", "seed"]
        rows = rows.sort_values(cell_keys + ["step"], kind="stable")
        rows = rows.drop_duplicates(cell_keys + ["step"], keep="last")  # one value per run and step
        steps_by_step = [(FINAL, rows.groupby(cell_keys, sort=True).tail(1))]
        common = set.intersection(*(set(g["step"]) for _, g in rows.groupby(cell_keys)))
        steps_by_step += [(int(step), rows[rows["step"] == step]) for step in sorted(common)]
        for step, at_step in steps_by_step:
            for metric, (value, low, high) in bootstrap(_task_arrays(at_step), METRICS, reps, seed, ci).items():
                records.append((experiment, recipe, suite, step, metric, value, low, high))
        n_cells = rows.groupby(cell_keys).ngroups
        log(f"stats: {experiment}/{recipe}/{suite}: {n_cells} run(s), {len(common)} common evaluation steps")
    return pd.DataFrame.from_records(records, columns=COLUMNS)


def read_stats(path: str | Path) -> pd.DataFrame:
    """stats.csv with ``step`` as strings (``final`` or the step number)."""
    return pd.read_csv(path, dtype={"step": str})


def curves(stats: pd.DataFrame) -> pd.DataFrame:
    """The along-training rows of a stats frame, ``step`` as integers."""
    rows = stats[stats["step"].astype(str) != FINAL].copy()
    rows["step"] = rows["step"].astype(int)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ML.benchmarking.stats", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scores", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--reps", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--ci", type=float, default=0.95)
    args = parser.parse_args(argv)
    scores = pd.read_csv(args.scores)
    table = compute(scores, args.reps, args.seed, args.ci)
    write_csv(table, args.out)
    print(f"stats: {len(table)} rows ({args.reps} bootstrap resamples, {args.ci:.0%} CIs) -> {args.out}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
