"""On-policy reinforcement learning: rollouts of N envs (``ML.collectors.rollout``) feed the agent's
updates; evaluation episodes (``ML.collectors.evaluation``) score it. No replay is kept."""

from __future__ import annotations

from typing import Any

from ML.agents.base import AgentSettings
from ML.collectors import Collector
from ML.collectors.rollout import Rollouts, rollout_shape
from ML.drivers.interactive import Interactive
from ML.envs.base import EnvSettings


class OnPolicy(Interactive):
    """The ``Driver`` of an agent that learns from its own fresh rollouts (``on_policy = True``: PPO); the
    rollout's shape is the agent's (``num_envs``, ``n_steps``)."""

    def collector_for(self, config: Any, task: EnvSettings, seed: int, num_envs: int) -> Collector:
        return Rollouts(task, seed, *rollout_shape(AgentSettings.from_config(config)))
