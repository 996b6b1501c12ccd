"""On-policy reinforcement learning: rollouts of N envs (``ML.collectors.rollout``) feed the agent's
updates; evaluation episodes (``ML.collectors.evaluation``) score it. No replay is kept."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ML.collectors.evaluation import Evaluator
from ML.collectors.rollout import Rollouts, rollout_shape
from ML.hyperparams import instantiate
from ML.hyperparams.instantiate import offer


class OnPolicy:
    """The ``Driver`` of an agent that learns from its own fresh rollouts (``on_policy = True``: PPO)."""

    def __init__(self, config: Any):
        # the eval env first: a bad env argument fails here with its usual message, before N copies
        eval_env = instantiate(config.Env, offer(config.Env, config.env, seed=int(config.seed), evaluation=True),
                               label="Env")
        self.collector = Rollouts(config, *rollout_shape(config))
        self.spec = self.collector.spec
        self.frames_per_step = self.collector.frames_per_step
        self.evaluator = Evaluator(config, eval_env, self.spec)

    @property
    def episode(self) -> int:
        return self.collector.episode

    def open(self, run_dir: Path, resume: bool, state: dict[str, Any] | None = None) -> None:
        state = state or {}
        self.evaluator.open(run_dir, state.get("evaluations", 0))
        self.collector.open(state.get("collector"))

    def step(self, agent: Any, step: int) -> dict[str, float]:
        rollout, metrics = self.collector.collect(agent, step)
        if rollout is not None:
            metrics = {**agent.update(rollout, step), **metrics}
        return metrics

    def evaluate(self, agent: Any, step: int, progress: Callable[[int, int], None] | None = None
                 ) -> dict[str, float]:
        return self.evaluator.evaluate(agent, step, progress)

    def before_checkpoint(self) -> None:
        """Nothing in flight: a vector step completes within its loop step."""

    def state(self) -> dict[str, Any]:
        return {"evaluations": self.evaluator.evaluations, "collector": self.collector.state()}

    def close(self, keep: bool) -> None:
        self.collector.close()
        self.evaluator.close()
