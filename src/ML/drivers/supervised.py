"""Classification: batches from a training set, accuracy on a held-out test set.

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
from ML.drivers.settings import SupervisedSettings
from ML.envs import datasets, memmap
from ML.envs.datasets import DatasetSettings
from ML.errors import UserError


class Supervised:
    """The ``Driver`` of a ``Dataset``: it reads ``DatasetSettings``, ``SupervisedSettings`` and
    ``AccelSettings``, and of the run's settings the seed and where results go (the norm and store caches)."""

    def __init__(self, config: Any):
        data, self.settings = DatasetSettings.from_config(config), SupervisedSettings.from_config(config)
        self.accel = AccelSettings.from_config(config)
        self.train_set, self.test_set, self.spec = datasets.load(
            data, memmap.store_for(config), Path(str(config["results"])) / ".cache")
        self.rank, self.world = ranks.rank_world()
        self.frames_per_step = int(self.settings.batch_size) * self.world  # samples seen by all ranks
        self.generator = torch.Generator().manual_seed(int(config["seed"]))
        self.batches: Any = None
        self.run_dir: Path | None = None

    @property
    def episode(self) -> int:
        """Epochs completed."""
        return getattr(self.batches, "epoch", 0)

    def open(self, run_dir: Path, resume: bool, state: dict[str, Any] | None = None) -> None:
        self.run_dir = run_dir
        size = int(self.settings.batch_size)
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

    def step(self, agent: Any, step: int) -> dict[str, float]:
        return agent.update(next(self.batches), step)

    def evaluate(self, agent: Any, step: int, progress: Callable[[int, int], None] | None = None
                 ) -> dict[str, float]:
        """The agent's evaluation on the test set, abortable (``ML.stops``): it keeps no state."""
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
        return {"score": float(result["score"]), **{k: float(v) for k, v in result.items() if k != "score"}}

    def before_checkpoint(self) -> None:
        """Nothing to settle: the batch order is all the state, and ``state`` reads it as it is."""

    def state(self) -> dict[str, Any]:
        """The batch order (generator, this epoch's permutation and position): a resume continues mid-epoch."""
        return {"batches": self.batches.state()}

    def close(self, keep: bool) -> None:
        if hasattr(self.batches, "close"):
            self.batches.close()


class _Shard:
    """This rank's ``size`` slice of every global batch (data-parallel training without the store)."""

    def __init__(self, batches: Any, rank: int, size: int):
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
