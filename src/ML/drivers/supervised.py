"""Classification (and generation): batches from a training set (``ML.collectors.dataset.Batches``), the
agent's score on a held-out test set (``HeldOut``)."""

from __future__ import annotations

from typing import Any

from ML.collectors.dataset import Batches, HeldOut
from ML.drivers.composed import Composed
from ML.envs import datasets, memmap


class Supervised(Composed):
    """The ``Driver`` of a run on a dataset: one batch a loop step, epochs counted as episodes."""

    def __init__(self, config: Any):
        train_set, test_set, spec = datasets.load(config, memmap.store_for(config))
        super().__init__(Batches(config, train_set, spec), HeldOut(test_set))
