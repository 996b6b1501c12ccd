"""Aggregate metrics with stratified-bootstrap confidence intervals (rliable's definitions, numpy only).

- IQM: the 25% trimmed mean of all runs × tasks normalized scores (flattened).
- median, mean: of the per-task mean scores (mean over runs).
- optimality gap (γ = 1): mean of max(0, 1 − score) over all runs × tasks.
- CI: stratified bootstrap (runs resampled with replacement within each task, same count), percentile method.
- performance profile: at each threshold τ, the fraction of runs scoring above τ (averaged over tasks),
  with a stratified-bootstrap band.
- probability of improvement P(X > Y): per task, the Mann-Whitney statistic over runs
  (P(x > y) + ½ P(x = y)), averaged over the tasks both recipes ran; stratified bootstrap CI (X and Y
  resampled independently within each task).

Too few runs: an interval needs at least ``MIN_RUNS`` runs in every task of its group (with one run a
within-task resample is that run again, so the interval has zero width; see docs/statistics.md). Below it
the interval is NaN, shown as "n/a", never as an exact ``[x, x]``; and a verdict (better / worse / no
difference) needs it for both recipes on every task compared, at the same budget and protocol.

The command line (stats.csv and the other tables beside it): ``python -m ML.benchmarking.cli stats``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as sps

from ML.benchmarking.published import is_published
from ML.progress import counted
from ML.published import environment_fields

COLUMNS = ["experiment", "recipe", "suite", "step", "metric", "value", "ci_low", "ci_high"]
# The fewest runs per task for an interval or a verdict: Agarwal et al. (2021, "Deep RL at the Edge of the
# Statistical Precipice") make their stratified-bootstrap intervals for the few-run regime of 3 to 10 runs
# per task; with 1 run a task has nothing to resample and with 2 only 3 distinct resamples.
MIN_RUNS = 3
BUDGET_TOLERANCE = 0.02  # two runs' final frames within 2% are one budget (DrQ-v2's curves end at 980k of 1M)
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


def _resample(tasks: list[np.ndarray], reps: int, seed: int) -> list[np.ndarray]:
    """Stratified bootstrap indices: per task an int array [reps, runs_t] (runs drawn within the task)."""
    rng = np.random.default_rng(seed)
    return [rng.integers(0, t.shape[0], size=(reps, t.shape[0])) for t in tasks]


def bootstrap_steps(tasks: Sequence[np.ndarray], metrics: Sequence[str] = METRICS, reps: int = 2000,
                    seed: int = 0, ci: float = 0.95, chunk_bytes: float = 64e6) -> dict[str, np.ndarray]:
    """{metric: array [3, S]} (point, low, high) for S evaluation steps at once.

    ``tasks``: one array [runs_t, S] per task. The same resampled runs serve every step and metric (so a
    curve's band is that of one bootstrap), vectorized over resamples and chunked over steps."""
    tasks = [np.asarray(t, dtype=float).reshape(len(t), -1) for t in tasks]
    if not tasks or any(t.shape[0] == 0 for t in tasks):
        raise ValueError("every task needs at least one run score")
    n_steps = tasks[0].shape[1]
    index = _resample(tasks, reps, seed)
    n_runs = sum(t.shape[0] for t in tasks)
    per_step = max(1, int(chunk_bytes // (8 * reps * n_runs)))
    alpha = 100 * (1 - ci) / 2
    out = {m: np.empty((3, n_steps)) for m in metrics}
    point_flat = np.concatenate(tasks, axis=0).T  # [S, N]
    point_means = np.stack([t.mean(axis=0) for t in tasks], axis=1)  # [S, T]
    for metric in metrics:
        out[metric][0] = AGGREGATES[metric](point_flat, point_means)
    for lo in range(0, n_steps, per_step):
        hi = min(n_steps, lo + per_step)
        samples = [t[:, lo:hi].T[:, idx] for t, idx in zip(tasks, index, strict=True)]  # [s, reps, runs_t]
        flat = np.concatenate(samples, axis=-1)  # [s, reps, N]
        task_means = np.stack([x.mean(axis=-1) for x in samples], axis=-1)  # [s, reps, T]
        for metric in metrics:
            values = AGGREGATES[metric](flat, task_means)  # [s, reps]
            out[metric][1:, lo:hi] = np.percentile(values, [alpha, 100 - alpha], axis=-1)
    return out


def bootstrap(scores: np.ndarray | Sequence[np.ndarray], metrics: Sequence[str] = METRICS, reps: int = 2000,
              seed: int = 0, ci: float = 0.95) -> dict[str, tuple[float, float, float]]:
    """{metric: (point estimate, ci_low, ci_high)} with a stratified bootstrap, vectorized over reps.

    Within each task the runs are resampled with replacement (index array [reps, runs]); the same resamples
    serve every metric. Seeded: the same inputs and seed give the same intervals."""
    tasks = [t.reshape(-1, 1) for t in _as_tasks(scores)]
    out = bootstrap_steps(tasks, metrics, reps, seed, ci)
    return {m: (float(out[m][0, 0]), float(out[m][1, 0]), float(out[m][2, 0])) for m in metrics}


def performance_profile(scores: np.ndarray | Sequence[np.ndarray], taus: np.ndarray, reps: int = 2000,
                        seed: int = 0, ci: float = 0.95) -> np.ndarray:
    """[3, len(taus)]: fraction of runs with score > τ (mean over tasks of the per-task fraction), and
    its stratified-bootstrap percentile band."""
    tasks = _as_tasks(scores)
    taus = np.asarray(taus, dtype=float)
    point = np.mean([(t[:, None] > taus).mean(axis=0) for t in tasks], axis=0)
    index = _resample([t.reshape(-1, 1) for t in tasks], reps, seed)
    boot = np.zeros((reps, taus.size))
    for t, idx in zip(tasks, index, strict=True):
        sorted_t = np.sort(t[idx], axis=1)  # [reps, runs]: count above τ by binary search
        above = t.size - np.apply_along_axis(np.searchsorted, 1, sorted_t, taus, "right")
        boot += above / t.size
    boot /= len(tasks)
    alpha = 100 * (1 - ci) / 2
    low, high = np.percentile(boot, [alpha, 100 - alpha], axis=0)
    return np.stack([point, low, high])


def _mann_whitney(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """P(x > y) + ½ P(x = y) over all pairs of the last axes: x [..., m], y [..., n] → [...]."""
    diff = x[..., :, None] - y[..., None, :]
    return (diff > 0).mean(axis=(-1, -2)) + 0.5 * (diff == 0).mean(axis=(-1, -2))


def probability_of_improvement(x: Sequence[np.ndarray], y: Sequence[np.ndarray], reps: int = 2000,
                               seed: int = 0, ci: float = 0.95) -> tuple[float, float, float]:
    """rliable's P(X > Y): per-task Mann-Whitney statistic averaged over tasks (x[i], y[i]: run scores of
    task i), with a stratified bootstrap (runs of X and of Y resampled within each task)."""
    x, y = _as_tasks(x), _as_tasks(y)
    if len(x) != len(y):
        raise ValueError("x and y need the same tasks")
    point = float(np.mean([_mann_whitney(a, b) for a, b in zip(x, y, strict=True)]))
    rng = np.random.default_rng(seed)
    boot = np.zeros(reps)
    for a, b in zip(x, y, strict=True):
        ia = rng.integers(0, a.size, size=(reps, a.size))
        ib = rng.integers(0, b.size, size=(reps, b.size))
        boot += _mann_whitney(a[ia], b[ib])
    boot /= len(x)
    alpha = 100 * (1 - ci) / 2
    low, high = np.percentile(boot, [alpha, 100 - alpha])
    return point, float(low), float(high)


def verdict(poi: float, low: float, high: float, seeds: int, max_seeds: int = 1000) -> tuple[str, float]:
    """better / worse / no difference from P(X > Y)'s CI against ½ (given enough runs, see ``MIN_RUNS``),
    and for a pair with no difference the seeds per task that would likely decide it: the CI's half-width
    shrinks like 1/√n, so it excludes ½ once n ≥ seeds × (half-width / |P − ½|)²  (NaN when P = ½
    exactly; capped at ``max_seeds``)."""
    if low > 0.5:
        return "better", float("nan")
    if high < 0.5:
        return "worse", float("nan")
    gap, half = abs(poi - 0.5), (high - low) / 2
    if gap < 1e-12:
        return "no difference", float("nan")
    return "no difference", float(min(max_seeds, max(seeds + 1, int(np.ceil(round(seeds * (half / gap) ** 2,
                                                                                        9))))))


def final_scores(scores: pd.DataFrame, window: float = 0.1) -> pd.DataFrame:
    """One row per run: the mean ``score`` and ``normalized`` of its evaluations at step ≥ (1 − window) ×
    its last step (``window = 0``: the last evaluation), with ``step`` = its last step, ``frame``, ``time``.

    The final score of a run is the mean of its evaluations over the last ``window`` fraction of its steps
    (default 10%: step ≥ 0.9 × the last step; ``window = 0``: the last evaluation alone). The definition,
    resamples, seed and CI level are written beside stats.csv in ``stats.json``.
    """
    keys = ["experiment", "recipe", "suite", "task", "seed"]
    if scores.empty:
        return pd.DataFrame(columns=[*keys, "step", "frame", "time", "score", "normalized", "evaluations"])
    rows = scores.sort_values([*keys, "step"], kind="stable")
    last = rows.groupby(keys, sort=False)["step"].transform("max")
    window_rows = rows[rows["step"] >= last * (1 - window)] if window > 0 else rows[rows["step"] == last]
    group = window_rows.groupby(keys, sort=True)
    out = group[["score", "normalized"]].mean()
    out["evaluations"] = group.size()
    tail = rows.groupby(keys, sort=True)[["step", "frame", "time"]].max()
    return tail.join(out).reset_index()[[*keys, "step", "frame", "time", "score", "normalized", "evaluations"]]


def describe_final(window: float) -> str:
    if window <= 0:
        return "the last evaluation of each run"
    return (f"the mean of each run's evaluations over the last {window:.0%} of its steps "
            f"(step >= {1 - window:g} x its last step)")


def enough_runs(tasks: Sequence[np.ndarray]) -> bool:
    """Whether every task has the ``MIN_RUNS`` runs an interval needs."""
    return min(len(t) for t in tasks) >= MIN_RUNS


def _groups(scores: pd.DataFrame):
    """(experiment, recipe, suite, frame) per group, plus suite ``all`` for recipes on several suites."""
    for (experiment, recipe), by_recipe in scores.groupby(["experiment", "recipe"], sort=True):
        suites = sorted(by_recipe["suite"].unique())
        for suite in suites:
            yield experiment, recipe, suite, by_recipe[by_recipe["suite"] == suite]
        if len(suites) > 1:
            yield experiment, recipe, "all", by_recipe


def _task_arrays(rows: pd.DataFrame, column: str = "normalized") -> list[np.ndarray]:
    return [g[column].to_numpy(float) for _, g in rows.groupby(["suite", "task"], sort=True)]


def compute(scores: pd.DataFrame, reps: int = 2000, seed: int = 0, ci: float = 0.95, log=print,
            window: float = 0.1, progress: Any = "auto") -> pd.DataFrame:
    """stats.csv rows from a scores.csv frame: final metrics (each run's final score, see ``final_scores``)
    and curves over the evaluation steps common to every run of the group.

    ``stats.csv``: ``experiment, recipe, suite, step, metric, value, ci_low, ci_high`` (the CI NaN when a
    task of the group has fewer than ``MIN_RUNS`` runs). ``step`` is ``final``
    for each run's last evaluation, else an evaluation step common to every run of the group (the curve).
    A recipe evaluated on several suites also gets the suite ``all`` (every task of every suite).
    ``progress``: groups bootstrapped of the total, with rate and ETA (``ML.progress.mode``).
    """
    records: list[tuple[Any, ...]] = []  # a row each: the final's step is FINAL, a curve's a number
    usable = scores.dropna(subset=["normalized"])
    left_out = scores[scores["normalized"].isna()][["experiment", "recipe", "suite", "task"]].drop_duplicates()
    for row in left_out.itertuples(index=False):
        log(f"stats: {row.experiment}/{row.recipe}/{row.suite}/{row.task} has no normalized scores "
            "(no reference); left out of the aggregates")
    finals = final_scores(usable, window)
    cell_keys = ["suite", "task", "seed"]
    groups = list(_groups(usable))
    for experiment, recipe, suite, rows in counted(groups, "stats: intervals and curves", "groups", progress):
        rows = rows.drop_duplicates(cell_keys + ["step"], keep="last")  # one value per run and step
        final = finals[(finals["experiment"] == experiment) & (finals["recipe"] == recipe)]
        if suite != "all":
            final = final[final["suite"] == suite]
        tasks = _task_arrays(final)
        for metric, (value, low, high) in bootstrap(tasks, METRICS, reps, seed, ci).items():
            low, high = (low, high) if enough_runs(tasks) else (np.nan, np.nan)
            records.append((experiment, recipe, suite, FINAL, metric, value, low, high))
        wide = rows.pivot_table(index=cell_keys, columns="step", values="normalized", aggfunc="last")
        wide = wide.dropna(axis=1)  # the steps every run evaluated
        steps = [int(s) for s in wide.columns]
        if steps:
            by_task = [g.to_numpy(float) for _, g in wide.groupby(level=["suite", "task"], sort=True)]
            curve = bootstrap_steps(by_task, METRICS, reps, seed, ci)
            for metric in METRICS:
                value, low, high = curve[metric]
                if not enough_runs(by_task):
                    low = high = np.full_like(value, np.nan)
                records += [(experiment, recipe, suite, step, metric, v, lo, hi)
                            for step, v, lo, hi in zip(steps, value, low, high, strict=True)]
        log(f"stats: {experiment}/{recipe}/{suite}: {len(wide)} run(s), {len(steps)} common evaluation steps")
    return pd.DataFrame.from_records(records, columns=COLUMNS)


def labelled(frame: pd.DataFrame, several: bool | None = None) -> pd.Series:
    """Each row's legend label: its recipe, or ``recipe (experiment)`` when several experiments are mixed
    (``several``: decided by the caller across frames; by default, from this frame's experiments)."""
    if frame["experiment"].nunique() > 1 if several is None else several:
        return frame["recipe"].astype(str) + " (" + frame["experiment"].astype(str) + ")"
    return frame["recipe"].astype(str)


PROFILE_COLUMNS = ["experiment", "recipe", "suite", "tau", "value", "ci_low", "ci_high"]


def profiles(finals: pd.DataFrame, reps: int = 2000, seed: int = 0, ci: float = 0.95,
             taus: np.ndarray | None = None, progress: Any = "auto") -> pd.DataFrame:
    """Performance profiles of the final normalized scores per experiment, recipe and suite (bands NaN below
    ``MIN_RUNS`` runs per task); ``progress``: groups of the total (``ML.progress.mode``)."""
    usable = finals.dropna(subset=["normalized"])
    if taus is None:
        top = max(1.0, float(usable["normalized"].max())) if len(usable) else 1.0
        bottom = min(0.0, float(usable["normalized"].min())) if len(usable) else 0.0
        taus = np.linspace(bottom, top, 81)
    records = []
    groups = list(_groups(usable))
    for experiment, recipe, suite, rows in counted(groups, "stats: performance profiles", "groups", progress):
        tasks = _task_arrays(rows)
        value, low, high = performance_profile(tasks, taus, reps, seed, ci)
        if not enough_runs(tasks):
            low = high = np.full_like(value, np.nan)
        records += [(experiment, recipe, suite, t, v, lo, hi) for t, v, lo, hi in zip(taus, value, low, high,
                                                                                         strict=True)]
    return pd.DataFrame.from_records(records, columns=PROFILE_COLUMNS)


COMPARISON_COLUMNS = ["suite", "x", "y", "poi", "ci_low", "ci_high", "verdict", "tasks", "seeds",
                      "seeds_needed", "sentence"]
VERDICTS = ("better", "worse", "no difference")  # the others say why there is none


def _budget(rows: pd.DataFrame) -> float:
    """The env frames a recipe's runs of one task reached (the step where a run has no frames)."""
    return float(rows["frame"].where(rows["frame"].notna(), rows["step"]).max())


def _protocol_difference(x: str, y: str, cards: dict[str, dict[str, Any]]) -> str | None:
    """Why two recipes' protocol cards (``cards``: label → card, absent when unknown) are not one protocol: the
    environment and evaluation settings only, since the agents' own settings are what a comparison compares."""
    cards = {label: environment_fields(card) for label, card in cards.items()}
    for label in (x, y):
        mixed = [k for k, v in cards.get(label, {}).items() if str(v).startswith("mixed: ")]
        if mixed:
            return f"{label}'s runs mix protocols ({', '.join(mixed)})"
    if x not in cards or y not in cards:
        return None
    keys = dict.fromkeys([*cards[x], *cards[y]])
    diff = [f"{k} {cards[x].get(k)} vs {cards[y].get(k)}" for k in keys if cards[x].get(k) != cards[y].get(k)]
    return "; ".join(diff) or None


def comparisons(finals: pd.DataFrame, reps: int = 2000, seed: int = 0, ci: float = 0.95,
                cards: dict[tuple[str, str, str], dict[str, Any]] | None = None,
                progress: Any = "auto") -> pd.DataFrame:
    """P(X > Y) and a verdict for every pair of recipes (``labelled``) on each suite, over the tasks both ran
    (a published entry is always Y).

    A verdict (better / worse / no difference) only where both recipes have ``MIN_RUNS`` runs on every task
    compared, reached the same budget (final frames within ``BUDGET_TOLERANCE``) and share a protocol card
    on every task compared (``cards``: (suite, label, task) → the card its runs of that task share, so a
    task's own action set or episode cap is never a difference; a pair without one is not checked). Otherwise
    the verdict says why not: ``not enough runs`` (P shown, CI NaN), ``different budgets`` or ``different
    protocols`` (nothing computed: such runs are never compared). ``progress``: pairs of the total, with rate
    and ETA (``ML.progress.mode``)."""
    usable = finals.dropna(subset=["normalized"]).assign(label=lambda f: labelled(f))
    cards = cards or {}
    records = []
    pairs = []  # (suite, x, y, each label's runs by task, the protocol cards by task)
    for suite, rows in usable.groupby("suite", sort=True):
        labels = sorted(rows["label"].unique(), key=lambda lab: (is_published(lab), lab))  # a user's recipe is X
        per = {lab: dict(tuple(rows[rows["label"] == lab].groupby("task"))) for lab in labels}
        task_cards: dict[str, dict[str, dict[str, Any]]] = {}
        for (s, lab, task), card in cards.items():
            if s == suite:
                task_cards.setdefault(task, {})[lab] = card
        pairs += [(suite, x, y, per, task_cards) for i, x in enumerate(labels) for y in labels[i + 1:]]
    for suite, x, y, per, task_cards in counted(pairs, "stats: P(X > Y)", "pairs", progress):
        tasks = sorted(set(per[x]) & set(per[y]))
        if not tasks:
            continue
        head = f"On {suite}, {x} vs {y}"
        nx = min(len(per[x][t]) for t in tasks)
        ny = min(len(per[y][t]) for t in tasks)
        budgets = [(t, _budget(per[x][t]), _budget(per[y][t])) for t in tasks]
        apart = [(t, a, b) for t, a, b in budgets if abs(a - b) > BUDGET_TOLERANCE * max(abs(a), abs(b))]
        protocol = next((f"{d} on {t}" for t in tasks
                         if (d := _protocol_difference(x, y, task_cards.get(t, {})))), None)
        nan = float("nan")
        if apart:
            t, a, b = apart[0]
            why = (f"different budgets: {x} ends at {a:,.0f} frames, {y} at {b:,.0f} on {t}"
                   + (f" (and {len(apart) - 1} more task(s))" if len(apart) > 1 else ""))
            records.append((suite, x, y, nan, nan, nan, "different budgets", len(tasks), min(nx, ny), nan,
                            f"{head}: not compared ({why})."))
            continue
        if protocol:
            records.append((suite, x, y, nan, nan, nan, "different protocols", len(tasks), min(nx, ny),
                            nan, f"{head}: not compared (different protocols: {protocol})."))
            continue
        scores_x = [per[x][t]["normalized"].to_numpy(float) for t in tasks]
        scores_y = [per[y][t]["normalized"].to_numpy(float) for t in tasks]
        poi, low, high = probability_of_improvement(scores_x, scores_y, reps, seed, ci)
        n = f"{nx} each" if nx == ny else f"{nx} and {ny}"
        where = f"over {len(tasks)} task(s), {n.replace(' each', '')} run(s) per task" + (
            " each" if nx == ny else "")
        if min(nx, ny) < MIN_RUNS:
            records.append((suite, x, y, poi, nan, nan, "not enough runs", len(tasks), min(nx, ny), MIN_RUNS,
                            f"{head}: not enough runs for a verdict (n = {n}; need ≥ {MIN_RUNS}): "
                            f"P({x} > {y}) = {poi:.2f}, CI n/a, {where}."))
            continue
        word, needed = verdict(poi, low, high, min(nx, ny))
        p = f"P({x} > {y}) = {poi:.2f}, {ci:.0%} CI [{low:.2f}, {high:.2f}] {where}"
        if word == "no difference":
            sentence = f"{head}: no difference detected ({p}; the CI includes 0.5"
            sentence += ("; P is exactly 0.5, more seeds would not decide it)" if np.isnan(needed)
                         else f"; about {int(needed)} seeds per task would likely decide it)")
        else:
            sentence = f"On {suite}, {x} is {word} than {y}: {p}"
        records.append((suite, x, y, poi, low, high, word, len(tasks), min(nx, ny), needed, sentence + "."))
    return pd.DataFrame.from_records(records, columns=COMPARISON_COLUMNS)


def read_stats(path: str | Path) -> pd.DataFrame:
    """stats.csv with ``step`` as strings (``final`` or the step number)."""
    return pd.read_csv(path, dtype={"step": str})


def curves(stats: pd.DataFrame) -> pd.DataFrame:
    """The along-training rows of a stats frame, ``step`` as integers."""
    rows = stats[stats["step"].astype(str) != FINAL].copy()
    rows["step"] = rows["step"].astype(int)
    return rows
