"""Tasks trained together vs each alone: final scores and wall time.

    .venv/bin/python benchmarks/together.py [--steps 50000] [--seeds 0] [--results /tmp/together-bench]
    .venv/bin/python benchmarks/together.py --across [--seeds 0 1 2]

Same kind (default): one DQN on CartPole-v1 and Acrobot-v1 together vs a DQN on each. Each single-task run is
the ``task=dqn`` recipe on its task for ``--steps`` steps (Acrobot-v1 with the recipe's ``by_task`` lr 5e-4);
the together run is ``task=dqn env.task=[CartPole-v1,Acrobot-v1]`` for the sum of the two budgets
(2 × ``--steps``) at the recipe's default lr 1e-3 (``by_task`` keys one task).

Across kinds (``--across``): the ``digits_cartpole`` recipe (a Digits classifier, 1000 steps, and a
CartPole-v1 DQN, 50000 steps, sharing one Trunk) vs ``task=classify`` and ``task=dqn`` alone at the same
budgets. All on one thread. Prints each run's final evaluation per task (Digits: test accuracy; CartPole: the
recipe's 10 greedy episodes) and wall seconds, and the ratio together / (sum of the singles) of the wall times.
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

from ML.cli import main

TASKS = ("CartPole-v1", "Acrobot-v1")
ACROSS = {"Digits": ("classify", "Classify", ["task=classify", "train_steps=1000"]),  # the recipe's budgets
          "CartPole-v1": ("dqn", "Classic", ["task=dqn", "env.task=CartPole-v1", "train_steps=50000"])}


def run(results: Path, argv: list[str], folder: tuple[str, str, str], seed: int) -> tuple[dict[str, str], float]:
    """One run's last eval.csv row (its folder: recipe, suite, task) and its wall seconds."""
    began = time.perf_counter()
    code = main([*argv, f"seed={seed}", "threads=1", "progress=false", "experiment=together-bench",
                 f"results={results}", "overwrite=true"])
    wall = time.perf_counter() - began
    assert code == 0, f"run {argv} failed ({code})"
    with (results.joinpath("together-bench", "runs", *folder, str(seed)) / "eval.csv").open() as f:
        return list(csv.DictReader(f))[-1], wall


def same_kind(results: Path, steps: int, seed: int) -> None:
    walls = 0.0
    for task in TASKS:
        last, wall = run(results, ["task=dqn", f"env.task={task}", f"train_steps={steps}"], ("dqn", "Classic", task),
                         seed)
        walls += wall
        print(f"seed {seed}  single    {task:<12} {steps:>7} steps  final {float(last['score']):8.1f}  "
              f"{wall:7.1f} s", flush=True)
    last, wall = run(results, ["task=dqn", f"env.task=[{','.join(TASKS)}]", f"train_steps={2 * steps}"],
                     ("dqn", "Classic", "+".join(TASKS)), seed)
    per_task = "  ".join(f"{t} {float(last[f'score.{t}']):.1f}" for t in TASKS)
    print(f"seed {seed}  together  {2 * steps:>7} steps  final {per_task}  {wall:7.1f} s", flush=True)
    print(f"seed {seed}  wall: singles {walls:.1f} s, together {wall:.1f} s, "
          f"ratio together/singles {wall / walls:.2f}", flush=True)


def across(results: Path, seed: int) -> None:
    walls = 0.0
    for task, (recipe, suite, argv) in ACROSS.items():
        last, wall = run(results, argv, (recipe, suite, task), seed)
        walls += wall
        print(f"seed {seed}  single    {task:<12} {argv[-1]:<18} final {float(last['score']):8.4g}  {wall:7.1f} s",
              flush=True)
    last, wall = run(results, ["task=digits_cartpole"],
                     ("digits_cartpole", "Together", "+".join(ACROSS)), seed)
    per_task = "  ".join(f"{t} {float(last[f'score.{t}']):.4g}" for t in ACROSS)
    print(f"seed {seed}  together  shared Trunk        final {per_task}  {wall:7.1f} s", flush=True)
    print(f"seed {seed}  wall: singles {walls:.1f} s, together {wall:.1f} s, "
          f"ratio together/singles {wall / walls:.2f}", flush=True)


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=50000, help="same kind: each single-task run's train_steps")
    parser.add_argument("--across", action="store_true", help="Digits + CartPole sharing a Trunk instead")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--results", type=Path, default=Path("/tmp/together-bench"))
    args = parser.parse_args()
    for seed in args.seeds:
        if args.across:
            across(args.results, seed)
        else:
            same_kind(args.results, args.steps, seed)


if __name__ == "__main__":
    cli()
