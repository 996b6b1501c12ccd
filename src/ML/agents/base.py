"""The agent contract the run loop relies on."""

from __future__ import annotations

from typing import Any

import numpy as np
from torch import nn


class Agent(nn.Module):
    """An agent is an ``nn.Module`` built as ``Agent(spec=TaskSpec, config=Config, **agent_args)``.

    RL agents implement ``act`` and ``update``; classifiers implement ``update`` and ``evaluate``
    (see ``ML.agents.classifier``). agent.pt keeps its state (``ML.checkpoints.agent_state``).
    """

    def act(self, obs: np.ndarray, step: int, eval_mode: bool = False) -> Any:
        """The action for one observation (no batch axis)."""
        raise NotImplementedError

    def update(self, replay: Any, step: int) -> dict[str, float]:
        """Called once per environment step; learns when its schedule says so and returns its losses."""
        return {}
