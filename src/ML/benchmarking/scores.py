"""Gather run directories into one tidy, normalized ``scores.csv``.

One row per evaluation row of every complete run: ``experiment, recipe, suite, task, seed, step, frame,
time, score, normalized``. A run whose run.json status is not ``complete`` is never counted. A run of tasks
trained together gives rows per task under its own label (``ML.benchmarking.together``).

    python -m ML.benchmarking.cli gather --experiment default --results results --out results/default/scores.csv
    python -m ML.benchmarking.cli check results/default/runs/dqn/Classic/CartPole-v1/0/run.json
"""

from __future__ import annotations

import io
import sys
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from ML import layout, runinfo
from ML.benchmarking import published as published_atari
from ML.benchmarking import references, together
from ML.benchmarking.normalize import ReferenceWarning, normalize
from ML.fileio import atomic_write, read_json
from ML.progress import counted

COLUMNS = ["experiment", "recipe", "suite", "task", "seed", "step", "frame", "time", "score", "normalized"]
IDENTITY = ["experiment", "recipe", "suite", "task", "seed"]


def find_runs(experiment_dir: str | Path) -> list[Path]:
    """Every run.json of an experiment (``ML.layout``)."""
    return sorted(Path(experiment_dir).glob(layout.RUN_GLOB))


def identity(run_json: Path, info: dict[str, Any]) -> dict[str, Any]:
    """experiment/recipe/suite/task/seed from run.json, else from the directory layout."""
    from_path = layout.identity_of(run_json.resolve().parent)
    out = {key: info.get(key) if info.get(key) not in (None, "") else from_path.get(key) for key in IDENTITY}
    out["seed"] = int(out["seed"]) if out["seed"] is not None else 0
    tasks = together.run_tasks(info)
    if tasks:  # tasks trained together: their own label, never pooled with the recipe's runs of one task
        out["recipe"] = together.label(str(out["recipe"]), [str(t["task"]) for t in tasks])
    return out


def write_csv(frame: pd.DataFrame, path: str | Path) -> None:
    def write(tmp: Path) -> None:
        buffer = io.StringIO()
        frame.to_csv(buffer, index=False)
        tmp.write_text(buffer.getvalue())

    atomic_write(path, write)


def published_rows(scores: pd.DataFrame, matching: dict[str, float], experiment: str | None) -> pd.DataFrame:
    """DrQ-v2's own per-seed evaluations as the comparison entry ``DrQ-v2 (published)``: for each DMC task
    in ``matching`` (task → the last frame of the runs whose protocol matches DrQ-v2's), every published
    evaluation up to that frame, so it is compared with the runs at the same env frames."""
    curves = references.drqv2_curves()
    parts = []
    for task, last in sorted(matching.items()):
        rows = curves[(curves["task"] == task) & (curves["frame"] <= last)]
        if rows.empty:
            continue
        parts.append(pd.DataFrame({
            "experiment": experiment or str(scores["experiment"].iloc[0]), "recipe": references.DRQV2_LABEL,
            "suite": "DMC", "task": task, "seed": rows["seed"].astype(int).to_numpy(),
            "step": (rows["frame"] // 2).astype(int).to_numpy(), "frame": rows["frame"].astype(float).to_numpy(),
            "time": float("nan"), "score": rows["episode_reward"].astype(float).to_numpy(),
            "normalized": rows["episode_reward"].astype(float).to_numpy() / 1000.0}))
    return pd.concat(parts, ignore_index=True)[COLUMNS] if parts else pd.DataFrame(columns=COLUMNS)


def published_runs(scores: pd.DataFrame, matching: dict[tuple[str, str, str], float],
                   experiment: str | None) -> pd.DataFrame:
    """Published per-seed runs beside ours, each its own comparison entry: for every (suite, task, agent) in
    ``matching`` (→ the last step of our runs there whose protocol matches the reference's), the published
    evaluations up to that step. MuJoCo: Tianshou's ``agent`` runs, labelled with their gym version
    (``references.tianshou_label``); DMC from states: pytorch_sac's SAC (action repeat 1)."""
    parts = []
    for (suite, task, agent), last in sorted(matching.items()):
        if suite == "MuJoCo":
            rows = references.tianshou_runs(agent, task)
            labels = pd.Series([references.tianshou_label(agent, env) for env in rows["env"]], index=rows.index)
        else:
            rows = references.sac_dmc_runs(task)
            labels = pd.Series(references.SAC_DMC_LABEL, index=rows.index)
        keep = rows["step"] <= last
        rows, labels = rows[keep], labels[keep]
        if rows.empty:
            continue
        score = rows["score"].astype(float).to_numpy()
        parts.append(pd.DataFrame({
            "experiment": experiment or str(scores["experiment"].iloc[0]), "recipe": labels.to_numpy(),
            "suite": suite, "task": task, "seed": rows["seed"].astype(int).to_numpy(),
            "step": rows["step"].astype(int).to_numpy(), "frame": rows["step"].astype(float).to_numpy(),
            "time": float("nan"), "score": score, "normalized": normalize(score, suite, task)}))
    return pd.concat(parts, ignore_index=True)[COLUMNS] if parts else pd.DataFrame(columns=COLUMNS)


def gather(run_jsons: Iterable[str | Path], baselines: str | Path | None = None,
           experiment: str | None = None, log=print, published: bool = True, progress: Any = "auto") -> pd.DataFrame:
    """The tidy scores of the complete runs among ``run_jsons`` (incomplete ones are reported and skipped).

    Missing references give NaN ``normalized`` and one ReferenceWarning per suite/task. With ``published``,
    DMC tasks run under DrQ-v2's protocol also get DrQ-v2's own seeds as the entry ``DrQ-v2 (published)``
    (``published_rows``), Atari games run by a recipe that reproduces a published agent get that agent's
    published runs as ``<agent> (published)`` (``ML.benchmarking.published``), MuJoCo tasks Tianshou's runs of
    the agent a run is (its protocol card: Tianshou's SAC or PPO settings) and DMC tasks learned from states
    by pytorch_sac's SAC settings at action repeat 1 pytorch_sac's runs (``published_runs``). ``progress``: runs
    read of the total, with rate and ETA (``ML.progress.mode``: auto, true, false)."""
    frames, skipped = [], []
    matching: dict[str, float] = {}
    agents: dict[str, set[str]] = {}  # published agent -> the Atari games reproducing it
    runs: dict[tuple[str, str, str], float] = {}  # (suite, task, agent) → our last step, for published_runs
    for run_json in counted([Path(p) for p in run_jsons], "scores: reading runs", "runs", progress):
        info = read_json(run_json)
        status = runinfo.status(info)  # a running run whose heartbeat stopped is "killed"
        if info is None or status != "complete":
            skipped.append(f"{run_json.parent} ({status})")
            continue
        evals_path = run_json.parent / "eval.csv"
        try:
            evals = pd.read_csv(evals_path)
        except (OSError, UnicodeDecodeError, pd.errors.EmptyDataError, pd.errors.ParserError):
            evals = pd.DataFrame()  # unreadable: skipped and named below, like an empty one
        if evals.empty or "score" not in evals or "step" not in evals:
            skipped.append(f"{run_json.parent} (complete but eval.csv has no step/score rows)")
            continue
        ident = identity(run_json, info)
        if experiment is not None:
            ident["experiment"] = ident["experiment"] or experiment
        for task, task_evals, env in together.per_task(evals, info, ident["task"]):  # tasks together: each
            rows = pd.DataFrame({key: [value] * len(evals) for key, value in {**ident, "task": task}.items()})
            for column in ("step", "frame", "time", "score"):
                rows[column] = pd.to_numeric(task_evals[column], errors="coerce").to_numpy() \
                    if column in task_evals else float("nan")
            key = (ident["suite"], task)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", ReferenceWarning)
                rows["normalized"] = normalize(rows["score"].to_numpy(), ident["suite"], task, env, baselines)
            frames.append((key, rows, [str(w.message) for w in caught]))
        if ident["suite"] == "DMC" and not references.DMC_REFERENCE.mismatches(info.get("protocol")):
            matching[ident["task"]] = max(matching.get(ident["task"], 0.0), float(rows["frame"].max()))
        agent = published_atari.published_agent(ident["suite"], info.get("protocol"))
        if agent:
            agents.setdefault(agent, set()).add(ident["task"])
        reference = {"MuJoCo": references.MUJOCO_REFERENCE, "DMC": references.SAC_DMC_REFERENCE}.get(ident["suite"])
        matched = reference.matched(info.get("protocol")) if reference else None  # the card, not the recipe's name
        if matched:
            algorithm = (ident["suite"], ident["task"], references.ALGORITHM[matched])
            runs[algorithm] = max(runs.get(algorithm, 0.0), float(rows["step"].max()))
    if skipped:
        log(f"scores: not counted, {len(skipped)} run(s) not complete: " + "; ".join(skipped))
    warned = set()
    for key, _, messages in frames:
        for message in messages:
            if (key, message) not in warned:
                warned.add((key, message))
                warnings.warn(message, ReferenceWarning, stacklevel=2)
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype="float64" if c not in IDENTITY else "object") for c in COLUMNS})
    out = pd.concat([rows for _, rows, _ in frames], ignore_index=True)[COLUMNS]
    if published and matching:
        extra = published_rows(out, matching, experiment)
        if len(extra):
            log(f"scores: {references.DRQV2_LABEL} ({references.DRQV2_SOURCE}) added on {extra['task'].nunique()} "
                f"DMC task(s), {extra.groupby(['task', 'seed']).ngroups} published seed curves")
            out = pd.concat([out, extra], ignore_index=True)
    if published and agents:
        extra = published_atari.atari100k_rows(agents, experiment or str(out["experiment"].iloc[0]), COLUMNS)
        if len(extra):
            log(f"scores: {', '.join(sorted(extra['recipe'].unique()))} (rliable's Atari-100k runs) added on "
                f"{extra['task'].nunique()} game(s), {len(extra)} published runs")
            out = pd.concat([out, extra], ignore_index=True)
    if published and runs:
        extra = published_runs(out, runs, experiment)
        if len(extra):
            log(f"scores: published runs added beside {len(runs)} (suite, task, algorithm)(s): "
                + "; ".join(sorted(extra["recipe"].unique())) + f" ({references.TIANSHOU_SOURCE}; "
                f"{references.SAC_DMC_SOURCE}); Tianshou's are gym v3/v2, ours gymnasium v5: not pooled")
            out = pd.concat([out, extra], ignore_index=True)
    return out.sort_values(IDENTITY + ["step"], kind="stable").reset_index(drop=True)


def check(run_json: str | Path) -> str | None:
    """None when the run is complete with evaluation rows, else what is wrong."""
    info = read_json(run_json)
    if info is None:
        return f"{run_json} is missing or not JSON"
    if runinfo.status(info) != "complete":
        return f"{run_json}: status {runinfo.status(info)!r}, not 'complete'"
    if not (Path(run_json).parent / "eval.csv").is_file():
        return f"{Path(run_json).parent / 'eval.csv'} is missing"
    return None


def show_warnings() -> None:
    """Warnings as one readable line each (``warning: ...``) on stderr."""
    warnings.simplefilter("always", ReferenceWarning)
    warnings.showwarning = lambda message, category, *a, **k: print(f"warning: {message}", file=sys.stderr)
