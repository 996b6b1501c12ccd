"""``Plot experiment=NAME``: scores, statistics and figures from existing run directories, no snakemake.

    Plot experiment=default               results/default/{scores.csv, stats.csv, plots/*.png}
    Plot experiments=[ALE,DMC]            side by side: results/plots/ALE+DMC/
    Plot task=classify                    one recipe of the experiment: results/<experiment>/plots/classify/
    Plot experiment=default rescore=false redraw from the existing scores.csv/stats.csv (snakemake plots)

Keys: experiment(s), task (a recipe), suite, results (root, default results), reps, seed, ci (bootstrap),
rescore (default true: gather the run directories again), baselines (measure missing classic-control
random baselines: true/false). The same modules serve the pipeline's rules (ML.benchmarking.*).
"""

from __future__ import annotations

import re
import sys
import warnings
from pathlib import Path
from typing import Any

import yaml

from ML.benchmarking import references, scores
from ML.benchmarking.normalize import ReferenceWarning

DEFAULTS: dict[str, Any] = {
    "experiment": None, "experiments": None, "task": None, "suite": None, "results": "results",
    "reps": 2000, "seed": 0, "ci": 0.95, "rescore": True, "baselines": True,
}


class PlotError(Exception):
    pass


def default_experiment() -> str:
    """ML's default experiment name (the engine's _defaults.yaml), so ``Plot`` finds plain ``ML`` runs."""
    try:
        data = yaml.safe_load((Path(references.__file__).parents[1] / "recipes" / "_defaults.yaml").read_text())
        return str(data.get("experiment") or "Exp")
    except (OSError, yaml.YAMLError, AttributeError):
        return "Exp"


def parse(argv: list[str]) -> dict[str, Any]:
    options = dict(DEFAULTS)
    for token in argv:
        key, sep, value = token.partition("=")
        key = key.lstrip("+")
        if not sep or key not in DEFAULTS:
            raise PlotError(f"unknown argument {token!r}; use key=value with keys {', '.join(DEFAULTS)}")
        try:
            options[key] = yaml.safe_load(value) if value else None
        except yaml.YAMLError:
            raise PlotError(f"cannot parse {token!r} as a value") from None
    if options["experiments"] is not None and not isinstance(options["experiments"], list):
        options["experiments"] = [options["experiments"]]
    for key in ("reps", "seed"):
        if not isinstance(options[key], int) or options[key] < (1 if key == "reps" else 0):
            raise PlotError(f"{key} must be an integer ≥ {1 if key == 'reps' else 0}, not {options[key]!r}")
    return options


def _measure_missing(runs: list[Path], baselines: Path) -> None:
    """Measure the random baseline of classic-control tasks that have complete runs but no cached score."""
    tasks = set()
    for run_json in runs:
        info = scores.read_info(run_json) or {}
        if info.get("status") == "complete":
            ident = scores.identity(run_json, info)
            if ident["suite"] == "Classic":
                tasks.add(ident["task"])
    for task in sorted(tasks):
        if references.random_baseline(baselines, task) is None:
            out = references.baseline_path(baselines, task)
            print(f"Plot: measuring the random baseline of {task} -> {out}", flush=True)
            try:
                references.measure_random_baseline(task, out)
            except RuntimeError as e:
                print(f"warning: {e}", file=sys.stderr)


def run(options: dict[str, Any]) -> list[Path]:
    import pandas as pd

    from ML.benchmarking import plots, stats  # matplotlib and seaborn load only when there is work

    results = Path(options["results"])
    names = options["experiments"] or [options["experiment"] or default_experiment()]
    names = [str(n) for n in names]
    single = len(names) == 1
    base = results / names[0] if single else results / "plots" / "+".join(names)
    filters = {k: options[k] for k in ("task", "suite") if options[k] is not None}
    out_dir = (base / "plots") if single else base
    if filters:
        out_dir = out_dir / "_".join(re.sub(r"[^A-Za-z0-9_.+-]", "_", str(v)) for v in filters.values())
    # scores.csv/stats.csv sit beside plots/ for one experiment, inside the folder otherwise
    table_dir = base if single and not filters else out_dir
    scores_csv, stats_csv = table_dir / "scores.csv", table_dir / "stats.csv"

    if not options["rescore"] and single and (results / names[0] / "scores.csv").is_file():
        frame = pd.read_csv(results / names[0] / "scores.csv")
        print(f"Plot: using {results / names[0] / 'scores.csv'} ({len(frame)} rows)", flush=True)
        rescored = False
    else:
        frames = []
        for name in names:
            runs = scores.find_runs(results / name)
            if not runs:
                raise PlotError(f"no runs under {results / name / 'runs'}/ (train with ML ... experiment={name}, "
                                "or point results= at the folder that holds them)")
            if options["baselines"]:
                _measure_missing(runs, results / "baselines")
            frames.append(scores.gather(runs, results / "baselines", name))
        frame = pd.concat(frames, ignore_index=True)
        rescored = True
    if options["task"] is not None:
        frame = frame[frame["recipe"].astype(str) == str(options["task"])]
    if options["suite"] is not None:
        frame = frame[frame["suite"].astype(str).str.lower() == str(options["suite"]).lower()]
    if frame.empty:
        raise PlotError(f"no complete runs match {filters or names} under {results}")

    existing_stats = results / names[0] / "stats.csv"
    if not rescored and not filters and existing_stats.is_file():
        table = stats.read_stats(existing_stats)
        print(f"Plot: using {existing_stats}", flush=True)
    else:
        table = stats.compute(frame, options["reps"], options["seed"], options["ci"])
        table["step"] = table["step"].astype(str)
    if rescored or filters:
        scores.write_csv(frame, scores_csv)
        scores.write_csv(table, stats_csv)
        print(f"Plot: {len(frame)} score rows -> {scores_csv}; {len(table)} stats rows -> {stats_csv}", flush=True)
    return plots.draw(frame, table, out_dir)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if any(a in ("-h", "--help") for a in argv):
        print(__doc__)
        return 0
    warnings.simplefilter("always", ReferenceWarning)
    warnings.showwarning = lambda message, *a, **k: print(f"warning: {message}", file=sys.stderr)
    try:
        run(parse(argv))
    except PlotError as e:
        print(f"Plot: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
