"""Classification (and generation): batches from a training set (``ML.collectors.dataset.Batches``), the
agent's score on a held-out test set (``HeldOut``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ML.accelerate import AccelSettings
from ML.collectors.dataset import Batches, HeldOut
from ML.drivers.composed import Composed
from ML.drivers.settings import SupervisedSettings
from ML.envs import datasets, memmap
from ML.envs.datasets import DatasetSettings
from ML.runsettings import RunSettings


class Supervised(Composed):
    """The ``Driver`` of a run on a dataset: one batch a loop step, epochs counted as episodes. It reads
    ``DatasetSettings``, ``SupervisedSettings`` and ``AccelSettings``, and of the run's settings the seed and
    where results go (the norm and store caches)."""

    def __init__(self, config: Any):
        run, accel = RunSettings.from_config(config), AccelSettings.from_config(config)
        store = memmap.store_for(accel, run.results)
        train_set, test_set, spec = datasets.load(DatasetSettings.from_config(config), store,
                                                  Path(str(run.results)) / ".cache")
        batches = Batches(SupervisedSettings.from_config(config).batch_size, int(run.seed), accel, train_set, spec)
        super().__init__(batches, HeldOut(test_set))
