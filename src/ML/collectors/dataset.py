"""Dataset iteration: training batches in a seeded order (``Batches``), and the score on the held-out test
set (``HeldOut``).

``accelerate=true``: a built-in dataset comes from its memory-mapped store and batches are gathered by
``workers`` processes (``ML.envs.memmap``). Under data-parallel training (``ML.distributed``) each rank
takes its ``batch_size`` slice of every global batch of ``batch_size × world_size``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from ML import ranks, stops
from ML.accelerate import AccelSettings
from ML.agents.base import DatasetAgent
from ML.envs import datasets, memmap
from ML.envs.base import TaskSpec
from ML.errors import UserError


class Batches:
    """One training batch a loop step, epoch after epoch of seeded permutations; ``state()`` keeps the
    generator, the epoch's permutation and the position in it, so a resume continues mid-epoch."""

    def __init__(self, batch_size: int, seed: int, accel: AccelSettings, train_set: Any, spec: TaskSpec):
        self.size, self.accel, self.train_set, self.spec = int(batch_size), accel, train_set, spec
        self.rank, self.world = ranks.rank_world()
        self.frames_per_step = self.size * self.world  # samples seen by all ranks
        self.generator = torch.Generator().manual_seed(int(seed))
        self.batches: Any = None

    @property
    def episode(self) -> int:
        """Epochs completed."""
        return getattr(self.batches, "epoch", 0)

    def open(self, run_dir: Path, resume: bool, state: dict[str, Any] | None = None) -> None:
        """The batch order (nothing is kept in ``run_dir``), from ``state``'s position when given."""
        size = self.size
        if isinstance(self.train_set, memmap.MemmapData):
            workers = self.accel.workers
            device = str(self.accel.device or "auto")
            pin = torch.cuda.is_available() and device != "cpu"
            if workers is None:
                workers = memmap.default_workers(size * self.train_set.xm[0].nbytes)
            self.batches = memmap.SharedBatches(self.train_set, size, self.generator, int(workers),
                                                (self.rank, self.world), pin)
        elif self.world > 1:
            self.batches = _Shard(datasets.batches(self.train_set, size * self.world, self.generator),
                                  self.rank, size)
        else:
            self.batches = datasets.batches(self.train_set, size, self.generator)
        if state:  # mid-epoch: the same permutation, from the same position
            self.batches.load_state(state["batches"])

    def collect(self, agent: Any, step: int) -> Any:
        return next(self.batches)

    def finish(self) -> dict[str, float]:
        return {}

    def before_checkpoint(self) -> None:
        """Nothing to settle: the batch order is all the state, and ``state`` reads it as it is."""

    def state(self) -> dict[str, Any]:
        return {"batches": self.batches.state()}

    def close(self, keep: bool) -> None:
        """The gathering workers stopped (``accelerate=true``); nothing is kept."""
        if hasattr(self.batches, "close"):
            self.batches.close()


class _Shard:
    """This rank's ``size`` slice of every global batch (data-parallel training without the store)."""

    def __init__(self, batches: datasets.Batches, rank: int, size: int):
        self.inner, self.rank, self.size = batches, rank, size

    @property
    def epoch(self) -> int:
        return self.inner.epoch

    def state(self) -> dict[str, Any]:
        return self.inner.state()

    def load_state(self, state: dict[str, Any]) -> None:
        self.inner.load_state(state)

    def __next__(self) -> Any:
        x, y = next(self.inner)
        part = slice(self.rank * self.size, (self.rank + 1) * self.size)
        return x[part], y[part]


class HeldOut:
    """The agent's evaluation on the test set (``DatasetAgent.evaluate``), abortable (``ML.stops``); only the
    count of evaluations done is kept."""

    def __init__(self, test_set: Any):
        self.test_set = test_set
        self.evaluations = 0
        self.run_dir: Path | None = None

    def open(self, run_dir: Path, evaluations: int = 0) -> None:
        self.run_dir, self.evaluations = run_dir, int(evaluations)

    def evaluate(self, agent: Any, step: int, progress: Callable[[int, int], None] | None = None
                 ) -> dict[str, float]:
        """An eval.csv row: the agent's ``score`` and its other metrics."""
        if not isinstance(agent, DatasetAgent):
            raise UserError(f"{type(agent).__name__} learns from an environment and cannot be evaluated on a "
                            "dataset; use Agent=ClassifierAgent (or GANAgent) with Dataset=..., or set Env=...")
        tick = progress or (lambda done, total: None)
        agent.eval()
        try:
            with stops.abortable(), torch.no_grad():
                tick(0, 1)
                result = agent.evaluate(self.test_set, step, self.run_dir)
                tick(1, 1)
        finally:
            agent.train()
        self.evaluations += 1
        return {"score": float(result["score"]), **{k: float(v) for k, v in result.items() if k != "score"}}

    def close(self) -> None:
        """Nothing to release."""
