"""One network for several tasks whose inputs and actions differ: per-task adapter and head, a shared body."""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ML.blocks.network import NetworkSettings, build_network

# Q of an action a task does not have: low enough never to be an argmax, finite so no loss turns NaN
ABSENT = -1e9


def project(in_shape: Any, width: int = 64) -> nn.Sequential:
    """One task's own way into a shared Trunk (``together:`` with ``share: [Trunk]``): its features, whatever
    their shape (Digits' 64 pixels, CartPole's 4 numbers, a CNN's feature map), flattened and mapped by a
    ``Linear`` and ``ReLU`` to ``width``, the one input size the shared Trunk is built for. A plain
    ``Sequential``, so a DQN still acts through ``NumpyMLP``."""
    return nn.Sequential(nn.Flatten(1), nn.Linear(math.prod(in_shape), int(width)), nn.ReLU())


class PerTask(nn.Module):
    """Observations are ``[task index, the task's observation, zero padding]`` (``ML.drivers.together``).

    Task ``i``'s observation goes through its own adapter (``Linear``, ``ReLU``) to ``width`` features, the
    run's ``Eyes → Pool → Trunk → Model`` (shared: what the tasks learn together) maps ``width`` to
    ``width``, and task ``i``'s own head (``ReLU``, ``Linear``) maps those to its actions; the other actions'
    outputs are ``ABSENT``. Adapters and heads are per task because the tasks' observation sizes and action
    counts differ (4 vs 6, 2 vs 3 for CartPole and Acrobot): no single layer can read or write both.
    """

    def __init__(self, network: NetworkSettings, tasks: list[dict[str, Any]], width: int):
        super().__init__()
        self.dims = [math.prod(t["obs_shape"]) for t in tasks]
        self.actions = [int(t["num_actions"]) for t in tasks]
        self.width = int(width)
        self.adapters = nn.ModuleList(nn.Sequential(nn.Linear(d, self.width), nn.ReLU()) for d in self.dims)
        self.body = build_network(network.body(), (self.width,), (self.width,))
        self.heads = nn.ModuleList(nn.Sequential(nn.ReLU(), nn.Linear(self.width, a)) for a in self.actions)

    def path(self, i: int) -> nn.Sequential:
        """Task ``i``'s network alone on its own (unpadded) observations: its adapter, the body, its head (the
        modules themselves, not copies) — what acting on one observation runs (``NumpyMLP``)."""
        return nn.Sequential(self.adapters[i], self.body, self.heads[i])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Every adapter and head runs on the whole batch and ``where`` keeps each row's own task's (for a few
        small tasks cheaper than gathering rows: no indexing ops in the forward or the backward)."""
        task = x[:, :1]
        h = self.adapters[0](x[:, 1:1 + self.dims[0]])
        for i in range(1, len(self.dims)):
            h = torch.where(task == i, self.adapters[i](x[:, 1:1 + self.dims[i]]), h)
        z = self.body(h)
        width = max(self.actions)
        out = F.pad(self.heads[0](z), (0, width - self.actions[0]), value=ABSENT)
        for i in range(1, len(self.dims)):
            out = torch.where(task == i, F.pad(self.heads[i](z), (0, width - self.actions[i]), value=ABSENT), out)
        return out
