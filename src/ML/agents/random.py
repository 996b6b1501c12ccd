"""Uniformly random actions: the baseline that classic-control scores are normalized against."""

from __future__ import annotations

from typing import Any

import numpy as np

from ML.agents.base import BaseAgent, Bundle


class RandomAgent(BaseAgent):
    """Acts uniformly at random (discrete or continuous), seeded by the run's ``seed``; never learns.

    ``ML task=random Env=Classic env.task=CartPole-v1`` measures a task's random score (the recipe
    sets ``train_steps=0`` and ``evaluate_episodes=100``).
    """

    reads = frozenset[str]()
    uses = frozenset[str]()

    def __init__(self, spec: Any, settings: Bundle):
        super().__init__()
        self.discrete = bool(spec.discrete)
        self.num_actions = int(spec.num_actions or 0)
        self.action_shape = tuple(spec.action_shape or ())
        low = -1.0 if spec.action_low is None else spec.action_low
        high = 1.0 if spec.action_high is None else spec.action_high
        self.low, self.high = float(low), float(high)
        self.rng = np.random.default_rng(int(settings.run.seed))

    def act(self, obs: Any, step: int, eval_mode: bool = False) -> Any:
        if self.discrete:
            return int(self.rng.integers(self.num_actions))
        return self.rng.uniform(self.low, self.high, self.action_shape).astype(np.float32)

    def update(self, replay: Any, step: int) -> dict[str, float]:
        return {}
