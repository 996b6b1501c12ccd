"""A driver made of parts: one collector of training experience and one evaluator (``ML.collectors``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ML.agents.base import Agent
from ML.collectors import Collector, Evaluation


class Composed:
    """A ``Driver`` put together from a collector (the training experience) and an evaluator (eval.csv rows):
    a loop step is ``collect``, ``agent.update`` on what it returned, ``finish``; a checkpoint keeps the
    collector's state and the count of evaluations."""

    def __init__(self, collector: Collector, evaluator: Evaluation) -> None:
        self.collector, self.evaluator = collector, evaluator
        self.spec = collector.spec
        self.frames_per_step = collector.frames_per_step

    @property
    def episode(self) -> int:
        return self.collector.episode

    def open(self, run_dir: Path, resume: bool, state: dict[str, Any] | None = None) -> None:
        state = state or {}
        self.evaluator.open(run_dir, state.get("evaluations", 0))
        self.collector.open(run_dir, resume, state)

    def step(self, agent: Agent, step: int) -> dict[str, float]:
        experience = self.collector.collect(agent, step)
        metrics = agent.update(experience, step) if experience is not None else {}
        ended = self.collector.finish()
        return {**metrics, **ended} if ended else metrics

    def evaluate(self, agent: Agent, step: int, progress: Callable[[int, int], None] | None = None
                 ) -> dict[str, float]:
        return self.evaluator.evaluate(agent, step, progress)

    def before_checkpoint(self) -> None:
        self.collector.before_checkpoint()

    def state(self) -> dict[str, Any]:
        return {**self.collector.state(), "evaluations": self.evaluator.evaluations}

    def close(self, keep: bool) -> None:
        self.collector.close(keep)
        self.evaluator.close()
