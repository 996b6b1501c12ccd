"""Classification: batches from a training set, accuracy on a held-out test set."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ML.envs import datasets


class Supervised:
    def __init__(self, config: Any):
        self.config = config
        self.train_set, self.test_set, self.spec = datasets.load(config)
        self.frames_per_step = int(config.batch_size)
        self.generator = torch.Generator().manual_seed(int(config.seed))
        self.batches: Any = None
        self.run_dir: Path | None = None

    @property
    def episode(self) -> int:
        """Epochs completed."""
        return getattr(self.batches, "epoch", 0)

    def open(self, run_dir: Path, resume: bool, state: dict[str, Any] | None = None) -> None:
        self.run_dir = run_dir
        if state:
            self.generator.set_state(state["generator"])
        self.batches = datasets.batches(self.train_set, int(self.config.batch_size), self.generator)
        if state:
            self.batches.epoch = state["epoch"]

    def step(self, agent: Any, step: int) -> dict[str, float]:
        return agent.update(next(self.batches), step)

    def evaluate(self, agent: Any, step: int) -> dict[str, float]:
        agent.eval()
        # a generative agent also saves its samples in the run directory and reports its own score
        extra = {"out_dir": self.run_dir, "step": step} if getattr(agent, "generative", False) else {}
        with torch.no_grad():
            result = agent.evaluate(self.test_set, **extra)
        agent.train()
        score = result["score"] if "score" in result else result["accuracy"]
        return {"score": float(score), **{k: float(v) for k, v in result.items() if k != "score"}}

    def state(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state(), "epoch": self.episode}

    def close(self, keep: bool) -> None:
        pass
