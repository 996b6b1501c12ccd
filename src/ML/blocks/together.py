"""One network for several tasks whose inputs and actions differ: per-task adapter and head, a shared body."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from ML.blocks.network import body_config, build_network

# Q of an action a task does not have: low enough never to be an argmax, finite so no loss turns NaN
ABSENT = -1e9


class PerTask(nn.Module):
    """Observations are ``[task index, the task's observation, zero padding]`` (``ML.drivers.together``).

    Task ``i``'s observation goes through its own ``Linear`` adapter to ``width`` features, the config's
    ``Eyes → Pool → Trunk → Model`` (shared: what the tasks learn together) maps ``width`` to ``width``, and
    task ``i``'s own head maps those to its actions; the other actions' outputs are ``ABSENT``. Adapters and
    heads are per task because the tasks' observation sizes and action counts differ (4 vs 6, 2 vs 3 for
    CartPole and Acrobot): no single layer can read or write both.
    """

    def __init__(self, config: Any, tasks: list[dict[str, Any]], width: int):
        super().__init__()
        self.dims = [math.prod(t["obs_shape"]) for t in tasks]
        self.actions = [int(t["num_actions"]) for t in tasks]
        self.width = int(width)
        self.adapters = nn.ModuleList(nn.Linear(d, self.width) for d in self.dims)
        self.body = build_network(body_config(config), (self.width,), (self.width,))
        self.heads = nn.ModuleList(nn.Sequential(nn.ReLU(), nn.Linear(self.width, a)) for a in self.actions)

    def path(self, i: int) -> nn.Sequential:
        """Task ``i``'s network alone on its own (unpadded) observations: its adapter, the body, its head (the
        modules themselves, not copies) — what acting on one observation runs (``NumpyMLP``)."""
        return nn.Sequential(self.adapters[i], self.body, self.heads[i])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        task = x[:, 0].long()
        masks = [task == i for i in range(len(self.dims))]
        h = x.new_zeros(len(x), self.width)
        for adapter, dim, mask in zip(self.adapters, self.dims, masks, strict=True):
            h[mask] = adapter(x[mask, 1:1 + dim])
        z = self.body(h)
        out = x.new_full((len(x), max(self.actions)), ABSENT)
        for head, actions, mask in zip(self.heads, self.actions, masks, strict=True):
            out[mask, :actions] = head(z[mask])
        return out
