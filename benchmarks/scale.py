"""Pipeline scale: the dry run of a full Atari-100k grid, and the aggregation of as many synthetic cells.

    .venv/bin/python benchmarks/scale.py [--seeds 10] [--recipes 4] [--evals 100] [--reps 2000]

1. ``snakemake -n`` on 26 games x 10 seeds x 4 recipes (1,040 train jobs; target <= 10 s).
2. The SLURM plan (``snakemake -n --workflow-profile workflow/profiles/slurm``) of that grid and of a grid of
   as many small cells (classic control, grouped 8 per submission): sbatch submissions and planning time.
3. scores + stats + figures (the ``Plot`` implementation the rules share) for 1,040 synthetic complete
   cells with 100 evaluations each (target <= 30 s), timed per stage.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
sys.path.insert(0, str(REPO / "src"))


def dry_run(workdir: Path, seeds: int, recipes: int) -> tuple[float, int]:
    config = {"experiment": "scale", "seeds": list(range(seeds)),
              "grid": [{"recipe": f"recipe{i}", "suite": "atari26"} for i in range(recipes)]}
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    start = time.perf_counter()
    proc = subprocess.run([str(BIN / "snakemake"), "--snakefile", str(REPO / "workflow" / "Snakefile"),
                           "--directory", str(workdir), "--configfile", str(workdir / "config.yaml"),
                           "-n", "--quiet", "rules"],
                          capture_output=True, text=True, cwd=workdir)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"snakemake -n failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    jobs = next((int(line.split()[-1]) for line in (proc.stdout + proc.stderr).splitlines()
                 if line.startswith("train ") and line.split()[-1].isdigit()), 0)  # the first 'Job stats' table
    return elapsed, jobs


def slurm_plan(workdir: Path, grid: list[dict], seeds: int) -> tuple[float, int, int]:
    """Planning time, sbatch submissions and train jobs of the SLURM profile's dry run: one submission per
    group job and per ungrouped cluster job (the aggregation rules are localrules)."""
    (workdir / "config.yaml").write_text(yaml.safe_dump({"experiment": "scale", "seeds": list(range(seeds)),
                                                         "grid": grid}))
    start = time.perf_counter()
    proc = subprocess.run([str(BIN / "snakemake"), "--snakefile", str(REPO / "workflow" / "Snakefile"),
                           "--directory", str(workdir), "--configfile", str(workdir / "config.yaml"),
                           "--workflow-profile", str(REPO / "workflow" / "profiles" / "slurm"), "-n"],
                          capture_output=True, text=True, cwd=workdir)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"snakemake -n (slurm profile) failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    lines = proc.stdout.splitlines()
    groups = sum(line.endswith("Group job small (jobs in lexicogr. order):") for line in lines)
    local = {"scores", "stats", "figures", "report", "all"}
    alone = sum(1 for line in lines if re.fullmatch(r"rule (\w+):", line) and line[5:-1] not in local)
    trains = sum(1 for line in lines if re.fullmatch(r"\s*rule train(_small)?:", line))
    return elapsed, groups + alone, trains


def synthetic_tree(results: Path, seeds: int, recipes: int, evals: int) -> int:
    from ML.benchmarking import references

    games = sorted(references.atari100k_games())
    rng = np.random.default_rng(0)
    step = np.arange(evals) * 1000
    cells = 0
    for r in range(recipes):
        for game in games:
            low, high = references.atari_human_random(game)
            for seed in range(seeds):
                run = results / "scale" / "runs" / f"recipe{r}" / "Atari" / game / str(seed)
                run.mkdir(parents=True)
                skill = (0.2 + 0.15 * r) * (1 + 0.3 * rng.standard_normal())
                curve = low + (high - low) * skill * (1 - np.exp(-step / (step[-1] / 3 + 1)))
                score = curve + 0.05 * (high - low) * rng.standard_normal(evals)
                pd.DataFrame({"step": step, "frame": 4 * step, "episode": np.arange(evals),
                              "time": step / 800 + rng.random(), "score": score}).to_csv(run / "eval.csv", index=False)
                (run / "run.json").write_text(json.dumps({
                    "status": "complete", "experiment": "scale", "recipe": f"recipe{r}", "suite": "Atari",
                    "task": game, "seed": seed, "env": {"protocol": "atari100k"}}))
                cells += 1
    return cells


def aggregate(results: Path, reps: int) -> dict[str, float]:
    from ML.benchmarking import analysis, cells, plots, scores

    times = {}
    start = time.perf_counter()
    runs = scores.find_runs(results / "scale")
    frame = scores.gather(runs, results / "baselines", "scale")
    table = cells.table(runs)
    times["scores"] = time.perf_counter() - start
    start = time.perf_counter()
    frames = analysis.tables(frame, results / "scale", reps=reps, log=lambda *_: None)
    times["stats"] = time.perf_counter() - start
    start = time.perf_counter()
    written = plots.draw(frame, frames, results / "scale" / "plots", cells=table, log=lambda *_: None)
    analysis.summary(results / "scale" / "summary.md", "scale", frame, frames, table, written)
    times["figures"] = time.perf_counter() - start
    times["rows"] = len(frame)
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--recipes", type=int, default=4)
    parser.add_argument("--evals", type=int, default=100)
    parser.add_argument("--reps", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ml-scale-") as tmp:
        tmp = Path(tmp)
        (tmp / "dry").mkdir()
        elapsed, jobs = dry_run(tmp / "dry", args.seeds, args.recipes)
        print(f"snakemake -n: {jobs} train jobs (26 games x {args.seeds} seeds x {args.recipes} recipes) "
              f"in {elapsed:.1f} s (target <= 10 s)", flush=True)
        pixel = [{"recipe": f"recipe{i}", "suite": "atari26"} for i in range(args.recipes)]
        small = [{"recipe": f"recipe{i}", "suite": "classic", "tasks": ["CartPole-v1", "Acrobot-v1"]}
                 for i in range(args.recipes)]
        for name, grid, seeds in (("Atari", pixel, args.seeds), ("classic", small, args.seeds * 13)):
            (tmp / name).mkdir()
            elapsed, submissions, trains = slurm_plan(tmp / name, grid, seeds)
            print(f"SLURM plan, {trains} {name} train jobs: {submissions} sbatch submissions "
                  f"({trains / max(submissions, 1):.1f} jobs per submission), planned in {elapsed:.1f} s", flush=True)
            if name == "Atari":  # one resource set: the plugin's job arrays apply (at most 1,000 tasks per array)
                print(f"  with --slurm-array-jobs=train: {math.ceil(trains / 1000)} sbatch submissions "
                      f"(computed from the plugin's array limit, not measured)", flush=True)
        start = time.perf_counter()
        n = synthetic_tree(tmp / "results", args.seeds, args.recipes, args.evals)
        print(f"synthetic tree: {n} complete cells x {args.evals} evaluations written in "
              f"{time.perf_counter() - start:.1f} s (not timed below)", flush=True)
        times = aggregate(tmp / "results", args.reps)
        total = times["scores"] + times["stats"] + times["figures"]
        print(f"aggregation of {n} cells ({int(times['rows'])} rows, {args.reps} resamples): "
              f"scores {times['scores']:.1f} s + stats {times['stats']:.1f} s + figures {times['figures']:.1f} s "
              f"= {total:.1f} s (target <= 30 s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
