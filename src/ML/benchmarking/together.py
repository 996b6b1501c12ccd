"""Tasks trained together (docs/together.md) in the pipeline: their score rows and together vs alone.

A together run (``env.task=[A,B]``, run directory task ``A+B``) gives one score row per task and evaluation,
read from eval.csv's ``score.<task>`` and normalized with that task's reference, under the recipe label
``dqn (together: A+B)`` (``label``): never pooled with the recipe's runs of one task. Its ``frame`` is the
frames that task trained (eval.csv ``frame.<task>``; a run from before they were recorded: the run's frames
divided by its k tasks), the **budget rule**: each task is compared with runs of it alone at those frames
(within ``stats.BUDGET_TOLERANCE``; other budgets are never compared), and on its own protocol card (run.json
``env.tasks[i].protocol``). ``comparisons`` then asks, per task, whether training it together helped, hurt or
made no difference against the same recipe alone, with the verdict machinery of ``stats.comparisons``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ML.benchmarking import stats
from ML.progress import counted

SEP = "+"  # the run directory's task of tasks trained together, as the engine names it (A+B)
_LABEL = re.compile(r"^(?P<recipe>.+) \(together: (?P<tasks>[^()]+)\)$")
# protocol card fields a run that records no card per task (one card of the tasks as a whole) cannot hold per
# task: the action set (the widest task's), the episode cap (none), the frame budget and the final-score text
# (T, not T/k); left out of the protocol check for such runs (the budget is checked on frames instead)
RUN_FIELDS = ("action_set", "max_episode_frames", "frame_budget", "final_score")
# fields of a task's own card left out of the check against its runs alone: the budget and the final-score text
# (its frames, checked within stats.BUDGET_TOLERANCE instead of exactly) and eval_envs (a together run plays
# the same seeded evaluation episodes one env at a time: drivers.together.Tagged has no act_batch)
TASK_FIELDS = ("frame_budget", "final_score", "eval_envs")
WORDS = {"worse": "helped", "better": "hurt", "no difference": "no difference"}  # stats' P(alone > together)
RULE = (f"each task of a run is compared with runs of it alone at the frames it trained (eval.csv frame.<task>; "
        f"T/k for a run of T frames over k tasks that does not record them) within {stats.BUDGET_TOLERANCE:.0%} "
        f"(other budgets are never compared), on its own protocol card; helped / hurt when the 95% CI of "
        f"P(together > alone) lies above / below 0.5, else no difference detected; cannot be told below "
        f"{stats.MIN_RUNS} runs per arm, or when budgets or protocols differ.")
COLUMNS = ["experiment", "suite", "task", "recipe", "together", "n_together", "n_alone", "together_iqm",
           "together_low", "together_high", "alone_iqm", "alone_low", "alone_high", "poi", "ci_low", "ci_high",
           "verdict", "why", "seeds_needed", "sentence"]


def task_name(tasks: Sequence[str]) -> str:
    """The run directory's task of ``tasks`` trained together: ``CartPole-v1+Acrobot-v1``."""
    return SEP.join(tasks)


def partners(run_task: str, task: str) -> str:
    """The tasks ``task`` was trained together with, from the run's task ``A+B``: ``B``."""
    return ", ".join(t for t in str(run_task).split(SEP) if t != task)


def label(recipe: str, tasks: Sequence[str]) -> str:
    """The recipe label of a together run's scores: ``dqn (together: CartPole-v1+Acrobot-v1)``."""
    return f"{recipe} (together: {task_name(tasks)})"


def parse(name: str) -> tuple[str, list[str]] | None:
    """``label``'s recipe and tasks, or None for any other recipe label."""
    match = _LABEL.match(str(name))
    return (match["recipe"], match["tasks"].split(SEP)) if match else None


def is_label(name: str) -> bool:
    """Whether a recipe label is a together run's (kept out of the pairwise comparisons: ``comparisons``)."""
    return parse(name) is not None


def run_count(rows: pd.DataFrame) -> int:
    """How many runs score or final rows come from: a together run's rows of its k tasks are one run."""
    if rows.empty:
        return 0
    task = rows["task"].where(~rows["recipe"].map(is_label), "")
    return int(rows.assign(task=task).groupby(["experiment", "recipe", "suite", "task", "seed"]).ngroups)


def task_cards(info: Mapping[str, Any] | None) -> dict[str, dict[str, Any]]:
    """Each task's own protocol card of a together run (run.json ``env.tasks[i].protocol``), by task; {} for a
    run of one task or one from before they were recorded."""
    return {str(t["task"]): t["protocol"] for t in run_tasks(info) if isinstance(t.get("protocol"), dict)}


def run_tasks(info: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """A together run's tasks from run.json (``env.tasks``: each task's name and reward threshold); [] else."""
    tasks = ((info or {}).get("env") or {}).get("tasks")
    return [t for t in tasks if isinstance(t, dict) and t.get("task")] if isinstance(tasks, list) else []


def per_task(evals: pd.DataFrame, info: Mapping[str, Any], task: str) -> list[tuple[str, pd.DataFrame, dict]]:
    """(task, evaluations, its run.json env) for each task of a run: the run itself for one task; for tasks
    trained together, each task's ``score.<task>`` as ``score`` and ``frame.<task>`` as ``frame`` (the frames it
    trained; frame / k for a run that does not record them)."""
    tasks = run_tasks(info)
    if not tasks:
        return [(task, evals, dict(info.get("env") or {}))]
    out = []
    for entry in tasks:
        rows = evals.assign(score=evals.get(f"score.{entry['task']}", np.nan))
        if f"frame.{entry['task']}" in rows:
            rows = rows.assign(frame=pd.to_numeric(rows[f"frame.{entry['task']}"], errors="coerce"))
        elif "frame" in rows:
            rows = rows.assign(frame=pd.to_numeric(rows["frame"], errors="coerce") / len(tasks))
        out.append((str(entry["task"]), rows, dict(entry)))
    return out


def _arm(scores: np.ndarray, reps: int, seed: int, ci: float) -> tuple[float, float, float]:
    """One arm's normalized IQM on one task with its stratified-bootstrap CI (NaN below ``stats.MIN_RUNS``)."""
    value, low, high = stats.bootstrap([scores], ["iqm"], reps, seed, ci)["iqm"]
    return (value, low, high) if stats.enough_runs([scores]) else (value, np.nan, np.nan)


def _card(card: Mapping[str, Any] | None, left_out: Sequence[str]) -> dict[str, Any] | None:
    return None if card is None else {k: v for k, v in card.items() if k not in left_out}


def comparisons(finals: pd.DataFrame, cards: Mapping[tuple[str, str, str, str], dict[str, Any]] | None = None,
                reps: int = 2000, seed: int = 0, ci: float = 0.95, progress: Any = "auto") -> pd.DataFrame:
    """together.csv: per together label, experiment and task, P(together > alone) against the same recipe's
    runs of that task alone (same experiment and suite), and a verdict: **helped** / **hurt** / **no
    difference** (``stats.verdict``), or **cannot be told** with ``why`` (``n = 1 each; need ≥ 3``, different
    budgets or protocols, no runs alone). ``cards``: (experiment, label, suite, run task) → the protocol card its runs
    share (``analysis.run_task_cards``), a together label's cards under each task's name where its runs record
    them (``TASK_FIELDS`` left out), else under ``A+B`` (``RUN_FIELDS`` left out). ``progress``: recipe labels
    of the total (``ML.progress.mode``)."""
    usable = finals.dropna(subset=["normalized"])
    cards = cards or {}
    records = []
    for name in counted(sorted({str(r) for r in usable["recipe"]}), "stats: together vs alone", "labels", progress):
        parsed = parse(name)
        if parsed is None:
            continue
        recipe, tasks = parsed
        for (experiment, suite), rows in usable[usable["recipe"] == name].groupby(["experiment", "suite"]):
            for task in tasks:
                mine = rows[rows["task"] == task]
                alone = usable[(usable["experiment"] == experiment) & (usable["recipe"] == recipe)
                               & (usable["suite"] == suite) & (usable["task"] == task)]
                if mine.empty:
                    continue
                head = f"On {task} ({suite}), {recipe} trained together with {partners(task_name(tasks), task)}"
                arm = _arm(mine["normalized"].to_numpy(float), reps, seed, ci)
                base = [experiment, suite, task, recipe, task_name(tasks), len(mine), len(alone), *arm]
                if alone.empty:
                    records.append([*base, np.nan, np.nan, np.nan, np.nan, np.nan, np.nan, "cannot be told",
                                    "no runs alone", np.nan, f"{head}: cannot be told (no runs of {recipe} on "
                                    f"{task} alone in {experiment})."])
                    continue
                alone_arm = _arm(alone["normalized"].to_numpy(float), reps, seed, ci)
                own = cards.get((experiment, name, suite, task))  # the task's own card, where recorded
                left_out = TASK_FIELDS if own is not None else RUN_FIELDS
                mine_card = own if own is not None else cards.get((experiment, name, suite, task_name(tasks)))
                pair_cards = {(str(suite), recipe, task): _card(cards.get((experiment, recipe, suite, task)), left_out),
                              (str(suite), name, task): _card(mine_card, left_out)}
                row = stats.comparisons(pd.concat([alone, mine]), reps, seed, ci, progress=False,
                                        cards={k: v for k, v in pair_cards.items() if v is not None}).iloc[0]
                assert (row.x, row.y) == (recipe, name)  # a recipe's name sorts before its together label
                poi, low, high = 1 - row.poi, 1 - row.ci_high, 1 - row.ci_low  # P(together > alone)
                n = f"{len(mine)} each" if len(mine) == len(alone) else f"{len(mine)} together, {len(alone)} alone"
                p = f"P(together > alone) = {poi:.2f}"
                if row.verdict in WORDS:
                    word, why = WORDS[row.verdict], ""
                    p += f", {ci:.0%} CI [{low:.2f}, {high:.2f}], n = {n}"
                    text = (f"sharing {word} ({p})" if word != "no difference" else
                            f"no difference detected ({p}; " + (
                                "P is exactly 0.5)" if np.isnan(row.seeds_needed) else
                                f"about {int(row.seeds_needed)} seeds per arm would likely decide it)"))
                elif row.verdict == "not enough runs":
                    word, why = "cannot be told", f"n = {n}; need ≥ {stats.MIN_RUNS}"
                    text = f"cannot be told ({why}): {p}, CI n/a"
                else:  # different budgets or protocols: stats says why, and nothing was computed
                    word, why = "cannot be told", str(row.verdict)
                    text = "cannot be told: " + str(row.sentence)[len(f"On {suite}, {recipe} vs {name}: "):].rstrip(".")
                records.append([*base, *alone_arm, poi, low, high, word, why, row.seeds_needed,
                                f"{head}: {text}."])
    return pd.DataFrame.from_records(records, columns=COLUMNS) if records else pd.DataFrame(columns=COLUMNS)
