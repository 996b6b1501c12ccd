"""``Plot experiment=NAME``: scores, statistics, figures and summary from existing run directories, no snakemake.

    Plot experiment=default               results/default/{scores.csv, stats.csv, ..., summary.md, plots/}
    Plot experiments=[ALE,DMC]            side by side: results/plots/ALE+DMC/
    Plot task=classify                    one recipe of the experiment: results/<experiment>/plots/classify/
                                          (with its together runs, labelled dqn (together: A+B) for task=dqn)
    Plot experiment=default rescore=false redraw from the existing scores.csv/stats.csv (snakemake plots)
    Plot experiment=default out=results/default/partial   the same, written elsewhere (an interrupted grid)

Keys: experiment(s), task (a recipe), suite, results (root, default results), reps, seed, ci (bootstrap),
window (final score: last fraction of each run, default 0.1), rescore (default true: gather the run
directories again), baselines (measure missing classic-control random baselines: true/false), out (one
experiment: the folder for its tables, plots/ and summary, default results/<experiment>), progress (runs read,
groups and pairs bootstrapped, figures drawn, each with rate and ETA: auto, a bar on a terminal and otherwise a
line every 30 s; true; false).
The same modules serve the pipeline's rules (ML.benchmarking.*).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import yaml

from ML import layout
from ML.benchmarking import references, scores, together
from ML.errors import UserError
from ML.fileio import read_json

DEFAULTS: dict[str, Any] = {
    "experiment": None, "experiments": None, "task": None, "suite": None, "results": "results",
    "reps": 2000, "seed": 0, "ci": 0.95, "window": 0.1, "rescore": True, "baselines": True, "out": None,
    "progress": "auto",
}


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
            raise UserError(f"unknown argument {token!r}; use key=value with keys {', '.join(DEFAULTS)}")
        try:
            options[key] = yaml.safe_load(value) if value else None
        except yaml.YAMLError:
            raise UserError(f"cannot parse {token!r} as a value") from None
    if options["experiments"] is not None and not isinstance(options["experiments"], list):
        options["experiments"] = [options["experiments"]]
    if not isinstance(options["window"], (int, float)) or not 0 <= options["window"] <= 1:
        raise UserError(f"window must be a number in [0, 1], not {options['window']!r}")
    if options["progress"] not in ("auto", True, False):
        raise UserError(f"progress must be auto, true or false, not {options['progress']!r}")
    for key in ("reps", "seed"):
        if not isinstance(options[key], int) or options[key] < (1 if key == "reps" else 0):
            raise UserError(f"{key} must be an integer ≥ {1 if key == 'reps' else 0}, not {options[key]!r}")
    return options


def recipe_of(label: Any) -> str:
    """The recipe a score row's label is a run of: a together run's label ``dqn (together: A+B)`` is dqn's
    (``task=dqn`` keeps those runs, under their own label)."""
    parsed = together.parse(str(label))
    return parsed[0] if parsed else str(label)


def _measure_missing(runs: list[Path], baselines: Path) -> None:
    """Measure the random baseline of classic-control tasks that have complete runs but no cached score."""
    tasks = set()
    for run_json in runs:
        info = read_json(run_json) or {}
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

    from ML.benchmarking import analysis, cells, plots  # matplotlib and seaborn load only when there is work

    results = Path(options["results"])
    names = options["experiments"] or [options["experiment"] or default_experiment()]
    names = [str(n) for n in names]
    single = len(names) == 1
    base = results / names[0] if single else results / "plots" / "+".join(names)
    if options["out"] is not None:
        if not single:
            raise UserError("out= takes one experiment; several write to results/plots/<A+B>/")
        base = Path(str(options["out"]))
    filters = {k: options[k] for k in ("task", "suite") if options[k] is not None}
    out_dir = (base / "plots") if single else base
    if filters:
        out_dir = out_dir / "_".join(re.sub(r"[^A-Za-z0-9_.+-]", "_", str(v)) for v in filters.values())
    # the tables sit beside plots/ for one experiment, inside the folder otherwise
    table_dir = base if single and not filters else out_dir

    existing = results / names[0]
    cell_table = None
    if not options["rescore"] and single and (existing / "scores.csv").is_file():
        frame = pd.read_csv(existing / "scores.csv")
        cell_table = plots.read_cells(existing / "cells.csv")
        print(f"Plot: using {existing / 'scores.csv'} ({len(frame)} rows)", flush=True)
        rescored = False
    else:
        frames, cell_tables = [], []
        for name in names:
            runs = scores.find_runs(results / name)
            if not runs:
                raise UserError(f"no runs under {results / name / 'runs'}/ (train with ML ... experiment={name}, "
                                "or point results= at the folder that holds them)")
            if options["baselines"]:
                _measure_missing(runs, results / "baselines")
            frames.append(scores.gather(runs, results / "baselines", name, progress=options["progress"]))
            statuses = {cells.run_json_of(p): p for p in (results / name).glob(layout.STATUS_GLOB)}
            cell_tables.append(cells.table(sorted(set(runs) | set(statuses)), statuses))
        frame = pd.concat(frames, ignore_index=True)
        cell_table = pd.concat(cell_tables, ignore_index=True)
        rescored = True
    for key, column in (("task", "recipe"), ("suite", "suite")):
        if options[key] is not None:
            keep = lambda f, key=key, column=column: (f[column].map(recipe_of) if key == "task" else f[column]
                                                      ).astype(str).str.lower() == str(options[key]).lower()
            frame = frame[keep(frame)]
            cell_table = cell_table[keep(cell_table)] if cell_table is not None else None
    if frame.empty:
        raise UserError(f"no complete runs match {filters or names} under {results}")

    tables_ready = all((existing / f).is_file() for f in ("stats.csv", "stats.json", "profiles.csv",
                                                         "comparisons.csv", "final_scores.csv"))
    if not rescored and not filters and tables_ready:
        tables = analysis.read_tables(existing)
        print(f"Plot: using the tables in {existing}/", flush=True)
    else:
        tables = analysis.tables(frame, table_dir, options["reps"], options["seed"], options["ci"],
                                 float(options["window"]), cells=cell_table, progress=options["progress"])
    if rescored or filters:
        scores.write_csv(frame, table_dir / "scores.csv")
        if cell_table is not None:
            scores.write_csv(cell_table, table_dir / "cells.csv")
        print(f"Plot: {len(frame)} score rows -> {table_dir / 'scores.csv'}", flush=True)
    written = plots.draw(frame, tables, out_dir, cells=cell_table, progress=options["progress"])
    summary = analysis.summary(table_dir / "summary.md", "+".join(names), frame, tables, cell_table, written)
    print(f"Plot: summary -> {summary}", flush=True)
    return written


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if any(a in ("-h", "--help") for a in argv):
        print(__doc__)
        return 0
    scores.show_warnings()
    try:
        run(parse(argv))
    except UserError as e:
        print(f"Plot: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
