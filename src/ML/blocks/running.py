"""``RunningMeanStd``: running statistics of a stream (observations, returns), for normalising it.

A module with float64 buffers, so the statistics travel in agent.pt with the weights and a resumed run
normalises exactly as before; ``update`` and ``normalize`` work on numpy arrays (the collectors' data)
through numpy views of the buffers.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


class RunningMeanStd(nn.Module):
    """Mean and variance of every sample seen, merged batch by batch (Chan et al.'s parallel update, as
    SB3's and Tianshou's ``RunningMeanStd``). ``count`` starts at ``epsilon`` (SB3: 1e-4; 0: the first batch
    sets the statistics, as Tianshou)."""

    mean: torch.Tensor  # buffers, float64
    var: torch.Tensor
    count: torch.Tensor

    def __init__(self, shape: tuple[int, ...] = (), epsilon: float = 1e-4):
        super().__init__()
        self.register_buffer("mean", torch.zeros(shape, dtype=torch.float64))
        self.register_buffer("var", torch.ones(shape, dtype=torch.float64))
        self.register_buffer("count", torch.tensor(float(epsilon), dtype=torch.float64))

    def update(self, batch: np.ndarray) -> None:
        """Merge a batch (samples on the first axis) into the statistics, in place."""
        batch = np.asarray(batch, np.float64)
        mean, var, count = self.mean.numpy(), self.var.numpy(), float(self.count)
        b_mean, b_var, b_count = batch.mean(axis=0), batch.var(axis=0), batch.shape[0]
        delta = b_mean - mean
        total = count + b_count
        m2 = var * count + b_var * b_count + delta**2 * count * b_count / total
        mean += delta * b_count / total
        var[...] = m2 / total
        self.count.fill_(total)

    def normalize(self, x: np.ndarray, clip: float = 10.0, eps: float = 1e-8) -> np.ndarray:
        """``(x - mean) / sqrt(var + eps)`` clipped to [-clip, clip], as float32."""
        out = (x - self.mean.numpy()) / np.sqrt(self.var.numpy() + eps)
        return np.clip(out, -clip, clip).astype(np.float32)

    def std(self, eps: float = 1e-8) -> float:
        """``sqrt(var + eps)`` of a scalar stream."""
        return float(np.sqrt(float(self.var) + eps))
