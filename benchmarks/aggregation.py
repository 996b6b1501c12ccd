"""How long the pipeline's aggregation takes on a large grid, and what showing its progress costs.

    .venv/bin/python benchmarks/aggregation.py [--recipes 8] [--tasks 20] [--seeds 5] [--evals 21] [--reps 2000]

Writes a real scores.csv for a synthetic grid (recipes × tasks × seeds runs on one suite, each evaluated
``--evals`` times) into a temporary folder, then runs ``python -m ML.benchmarking.cli stats`` on it (the
pipeline's ``stats`` rule: intervals and curves per recipe, performance profiles, P(X > Y) for every pair)
with ``--progress false`` and with ``--progress true`` (the bar, drawn to stderr), and ``plots`` the same
way, after an untimed warm-up. Prints each side's wall seconds, each count's last state (its elapsed time and
rate), the ratio with / without progress, and whether the tables written are byte-identical.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from ML.benchmarking import cli

TABLES = ("stats.csv", "profiles.csv", "comparisons.csv", "together.csv", "final_scores.csv", "final_scores.md")


def grid(path: Path, recipes: int, tasks: int, seeds: int, evals: int) -> int:
    """A scores.csv of recipes × tasks × seeds runs (recipe r's normalized score ends near r / recipes)."""
    rng = np.random.default_rng(0)
    rows = []
    for r in range(recipes):
        for t in range(tasks):
            for s in range(seeds):
                final = (r + 1) / recipes + rng.normal(0, 0.1)
                for e in range(evals):
                    step = e * 50_000
                    value = final * e / (evals - 1) + rng.normal(0, 0.02)
                    rows.append(("bench", f"recipe{r}", "DMC", f"task{t:02d}", s, step, 2 * step, step / 500.0,
                                 1000 * value, value))
    pd.DataFrame(rows, columns=["experiment", "recipe", "suite", "task", "seed", "step", "frame", "time", "score",
                                "normalized"]).to_csv(path, index=False)
    return len(rows)


def timed(argv: list[str]) -> tuple[float, str]:
    """Wall seconds of one cli command, and what it wrote to stderr."""
    err = io.StringIO()
    began = time.perf_counter()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        assert cli.main(argv) == 0, argv
    return time.perf_counter() - began, err.getvalue()


def finished(err: str) -> list[str]:
    """Each count's last state as its bar drew it (the count, its elapsed time and rate)."""
    last: dict[str, str] = {}
    for line in err.replace("\r", "\n").splitlines():
        if ": " in line and "|" in line:
            last[line.split(":")[0] + ":" + line.split(":")[1]] = line.strip()
    return list(last.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipes", type=int, default=8)
    parser.add_argument("--tasks", type=int, default=20)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--evals", type=int, default=21)
    parser.add_argument("--reps", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        scores = root / "scores.csv"
        n = grid(scores, args.recipes, args.tasks, args.seeds, args.evals)
        print(f"grid: {args.recipes} recipes x {args.tasks} tasks x {args.seeds} seeds, {args.evals} evaluations "
              f"each: {n} score rows; {args.reps} resamples")
        (root / "warm").mkdir()
        timed(["stats", "--scores", str(scores), "--out", str(root / "warm" / "stats.csv"), "--reps", "10",
               "--progress", "false"])  # imports and caches warm before either side is timed
        walls = {}
        for how in ("false", "true"):
            out = root / how
            out.mkdir()
            walls["stats", how], err = timed(["stats", "--scores", str(scores), "--out", str(out / "stats.csv"),
                                              "--reps", str(args.reps), "--progress", how])
            print(f"stats --progress {how}: {walls['stats', how]:.1f} s", *finished(err), sep="\n  ")
            walls["plots", how], err = timed(["plots", "--scores", str(scores), "--tables", str(out), "--out",
                                              str(out / "plots"), "--progress", how])
            print(f"plots --progress {how}: {walls['plots', how]:.1f} s", *finished(err), sep="\n  ")
        same = all((root / "false" / f).read_bytes() == (root / "true" / f).read_bytes() for f in TABLES)
        for step in ("stats", "plots"):
            print(f"{step}: with / without progress {walls[step, 'true'] / walls[step, 'false']:.2f}")
        print(f"tables byte-identical with and without progress: {same}")


if __name__ == "__main__":
    main()
