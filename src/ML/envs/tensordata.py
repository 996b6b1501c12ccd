"""In-memory datasets and the shuffled batch order: the leaf both the loader and the memory-mapped store use.

``EpochOrder`` is the one place a training permutation is drawn, so the in-process batches
(``datasets.Batches``) and the shared-memory workers (``memmap.SharedBatches``) serve the same batches,
and its ``state()`` (generator, this epoch's permutation, the position in it) resumes mid-epoch exactly.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.data import Dataset as TorchDataset

from ML.errors import UserError


class TensorData(TorchDataset):
    """An in-memory dataset: inputs ``x`` (uint8 or float, N × shape) and labels ``y`` (int64, N).

    Integer inputs are stored as they are (uint8 MNIST is 4× smaller than float) and scaled by
    ``scale`` when a batch is taken.
    """

    def __init__(self, x: torch.Tensor, y: torch.Tensor, scale: float | None = None,
                 classes: list[Any] | None = None):
        if len(x) != len(y):
            raise UserError(f"dataset has {len(x)} inputs but {len(y)} labels; they must match")
        self.x, self.y = x, y.long()
        self.scale = scale
        if classes is not None:
            self.classes = list(classes)

    def __len__(self) -> int:
        return len(self.y)

    def take(self, index: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """A batch ``(x float32, y int64)`` for an index tensor, slice or int."""
        x = self.x[index].float()
        if self.scale is not None:
            x = x * self.scale
        return x, self.y[index]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.take(index)

    def subset(self, index: torch.Tensor) -> TensorData:
        return TensorData(self.x[index], self.y[index], self.scale, getattr(self, "classes", None))


class EpochOrder:
    """Indices of shuffled batches, one ``randperm`` per epoch from ``generator``; the last incomplete batch
    of an epoch is dropped unless the whole set is smaller than one batch."""

    def __init__(self, size: int, batch_size: int, generator: torch.Generator):
        self.size, self.batch_size, self.generator = size, batch_size, generator
        self.drop_last = size > batch_size
        self._order: torch.Tensor | None = None
        self._position = 0

    def next(self) -> tuple[torch.Tensor, bool]:
        """The next batch's indices and whether they end an epoch."""
        if self._order is None:
            self._order, self._position = torch.randperm(self.size, generator=self.generator), 0
        end = min(self._position + self.batch_size, self.size)
        index = self._order[self._position:end]
        self._position = end
        remaining = self.size - end
        ends = remaining == 0 or (self.drop_last and remaining < self.batch_size)
        if ends:
            self._order = None
        return index, ends

    def state(self) -> dict[str, Any]:
        """Where the order stands: the generator, this epoch's permutation (None between epochs), the position."""
        return {"generator": self.generator.get_state(), "order": self._order, "position": self._position}

    def load_state(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["generator"])
        self._order, self._position = state["order"], int(state["position"])


__all__ = ["EpochOrder", "TensorData"]
