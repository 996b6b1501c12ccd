"""One DQN on CartPole-v1 and Acrobot-v1 together vs a DQN on each: final returns and wall time.

    .venv/bin/python benchmarks/together.py [--steps 50000] [--seeds 0] [--results /tmp/together-bench]

Each single-task run is the ``task=dqn`` recipe on its task for ``--steps`` steps (Acrobot-v1 with the
recipe's ``by_task`` lr 5e-4); the together run is ``task=dqn env.task=[CartPole-v1,Acrobot-v1]`` for the sum
of the two budgets (2 × ``--steps``) at the recipe's default lr 1e-3 (``by_task`` keys one task). All on one
thread. Prints each run's final evaluation per task (the recipe's 10 greedy episodes) and wall seconds, and the
ratio together / (CartPole + Acrobot) of the wall times (< 1: training them together is faster).
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

from ML.cli import main

TASKS = ("CartPole-v1", "Acrobot-v1")


def run(results: Path, tasks: list[str], steps: int, seed: int) -> tuple[dict[str, float], float]:
    """One run's final evaluation per task and its wall seconds."""
    task = tasks[0] if len(tasks) == 1 else f"[{','.join(tasks)}]"
    began = time.perf_counter()
    code = main(["task=dqn", f"env.task={task}", f"train_steps={steps}", f"seed={seed}", "threads=1",
                 "progress=false", "experiment=together-bench", f"results={results}", "overwrite=true"])
    wall = time.perf_counter() - began
    assert code == 0, f"run {tasks} failed ({code})"
    folder = results / "together-bench" / "runs" / "dqn" / "Classic" / "+".join(tasks) / str(seed)
    with (folder / "eval.csv").open() as f:
        last = list(csv.DictReader(f))[-1]
    scores = {t: float(last[f"score.{t}"]) for t in tasks} if len(tasks) > 1 else {tasks[0]: float(last["score"])}
    return scores, wall


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=50000, help="each single-task run's train_steps")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--results", type=Path, default=Path("/tmp/together-bench"))
    args = parser.parse_args()
    for seed in args.seeds:
        single: dict[str, float] = {}
        walls = 0.0
        for task in TASKS:
            scores, wall = run(args.results, [task], args.steps, seed)
            single.update(scores)
            walls += wall
            print(f"seed {seed}  single    {task:<12} {args.steps:>7} steps  final {scores[task]:8.1f}  "
                  f"{wall:7.1f} s", flush=True)
        scores, wall = run(args.results, list(TASKS), 2 * args.steps, seed)
        per_task = "  ".join(f"{t} {scores[t]:.1f}" for t in TASKS)
        print(f"seed {seed}  together  {2 * args.steps:>7} steps  final {per_task}  {wall:7.1f} s", flush=True)
        print(f"seed {seed}  wall: singles {walls:.1f} s, together {wall:.1f} s, "
              f"ratio together/singles {wall / walls:.2f}", flush=True)


if __name__ == "__main__":
    cli()
