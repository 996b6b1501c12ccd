"""Tasks of different kinds in one run (``together:`` task specs, docs/together.md): each task's own driver, as
its recipe would make it alone, feeding that task's agent inside one ``ML.agents.together.TogetherAgent``.

The run's ``train_steps`` are the tasks' budgets added up (``ML.hyperparams.together.budgets``); each step goes to
the task furthest behind its budget (the smallest share of it done, the first such task on a tie): equal
budgets take turns step by step, unequal ones interleave in proportion. Each task counts its own steps, so its
agent's schedules (exploration, learning start) run as they would alone. An evaluation evaluates every task;
eval.csv's ``score.<task>`` is each task's score and ``score`` their mean.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from ML.collectors.evaluation import in_turn
from ML.drivers.settings import AcrossSettings
from ML.envs.base import TaskSpec
from ML.errors import UserError
from ML.hyperparams.together import budgets, entries, task_configs
from ML.runinfo import jsonable


def turn(budgets: list[int], steps: list[int]) -> int:
    """The task whose step comes next: the one with the smallest share of its budget done (exact, in integers),
    the first on a tie; tasks whose budget is spent are skipped."""
    live = [i for i, b in enumerate(budgets) if steps[i] < b]
    best = live[0]
    for i in live[1:]:
        if steps[i] * budgets[best] < steps[best] * budgets[i]:
            best = i
    return best


class Across:
    """The ``Driver`` of a run with ``together:``: one driver per task, each opened in its own folder of the run
    directory (``<run>/<task>/``: a replay, a test set's samples), stepped in proportion to its budget."""

    frames_per_step = 1  # the tasks' frames differ in kind (samples, env frames): eval.csv's frame counts steps

    def __init__(self, config: Any, make_driver: Callable[[Any], Any]):
        """``make_driver``: ``ML.drivers.make_driver``, which makes each task's driver as it would alone."""
        self.budgets = budgets(config)
        self.configs = task_configs(config)
        self.drivers = [make_driver(c) for c in self.configs]
        specs = [d.spec for d in self.drivers]
        self.labels = [s.task for s in specs]
        if len(set(self.labels)) != len(self.labels):
            raise UserError(f"together: tasks {self.labels} repeat one; give every task spec a different task")
        recipes = [e["task"] for e in entries(config)]
        records = [{"label": s.task, "suite": s.suite, "recipe": r, "train_steps": b, "spec": jsonable(asdict(s))}
                   for s, r, b in zip(specs, recipes, self.budgets, strict=True)]
        self.spec = TaskSpec(suite="Together", task="+".join(self.labels), obs_shape=(), discrete=False, info={
            "together": {"tasks": records, "shared": list(AcrossSettings.from_config(config).share or []), "budget": (
                "train_steps in all; each step to the task furthest behind its budget")}})
        self.steps = [0] * len(self.drivers)

    @property
    def episode(self) -> int:
        """Episodes and epochs completed, all tasks together."""
        return sum(d.episode for d in self.drivers)

    def open(self, run_dir: Path, resume: bool, state: dict[str, Any] | None = None) -> None:
        state = state or {}
        self.steps = list(state.get("steps", self.steps))
        inner = state.get("drivers") or [None] * len(self.drivers)
        for label, driver, own in zip(self.labels, self.drivers, inner, strict=True):
            (run_dir / label).mkdir(parents=True, exist_ok=True)
            driver.open(run_dir / label, resume, own)

    def step(self, agent: Any, step: int) -> dict[str, float]:
        i = turn(self.budgets, self.steps)
        metrics = self.drivers[i].step(agent.tasks[i], self.steps[i])
        self.steps[i] += 1
        return {f"{k}.{self.labels[i]}": v for k, v in metrics.items()}

    def evaluate(self, agent: Any, step: int, progress: Callable[[int, int], None] | None = None
                 ) -> dict[str, float]:
        """Every task's own evaluation at its own step; its values suffixed ``.<task>``."""
        evaluators = [getattr(d, "evaluator", None) for d in self.drivers]
        rows = in_turn(evaluators, lambda i, tick: self.drivers[i].evaluate(agent.tasks[i], self.steps[i],
                                                                           progress=tick), progress)
        row = {f"{k}.{label}": v for label, values in zip(self.labels, rows, strict=True) for k, v in values.items()}
        scores = [row[f"score.{label}"] for label in self.labels]
        return {"score": float(np.mean(scores)), **row}

    def before_checkpoint(self) -> None:
        for driver in self.drivers:
            driver.before_checkpoint()

    def state(self) -> dict[str, Any]:
        return {"steps": list(self.steps), "drivers": [d.state() for d in self.drivers]}

    def close(self, keep: bool) -> None:
        for driver in self.drivers:
            driver.close(keep)
