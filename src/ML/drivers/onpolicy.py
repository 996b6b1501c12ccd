"""On-policy reinforcement learning: rollouts of N envs (``ML.collectors.rollout``) feed the agent's
updates; evaluation episodes (``ML.collectors.evaluation``) score it. No replay is kept."""

from __future__ import annotations

from typing import Any

from ML.collectors import Collector
from ML.collectors.rollout import Rollouts, rollout_shape
from ML.drivers.interactive import Interactive


class OnPolicy(Interactive):
    """The ``Driver`` of an agent that learns from its own fresh rollouts (``on_policy = True``: PPO)."""

    def collector_for(self, config: Any, num_envs: int) -> Collector:
        return Rollouts(config, *rollout_shape(config))
