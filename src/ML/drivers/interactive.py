"""Reinforcement learning: a collector feeds the agent (``ML.collectors``), an evaluator scores it on a
separately seeded copy of the task."""

from __future__ import annotations

from typing import Any

from ML.collectors import Collector
from ML.collectors.evaluation import Evaluator
from ML.drivers.composed import Composed
from ML.errors import UserError
from ML.hyperparams import instantiate
from ML.hyperparams.instantiate import offer


def off_policy(config: Any, num_envs: int) -> Collector:
    """The collector of an off-policy run: a saved replay alone (``offline=true``), N Atari games
    (``env.num_envs``), one env in a process of its own (``env_process=true``) or one env."""
    from ML.collectors.offpolicy import Offline, OffPolicy, Overlapped

    if config.get("offline"):
        if num_envs > 1:
            raise UserError(f"env.num_envs={num_envs} collects from several games, offline=true from none: "
                            "drop env.num_envs")
        return Offline(config)
    if num_envs > 1:
        if config.get("env_process"):
            raise UserError(f"env.num_envs={num_envs} steps its games in C++ threads already; "
                            "drop env_process=true")
        from ML.collectors.vector import Vector

        return Vector(config, num_envs)
    return Overlapped(config) if config.get("env_process") else OffPolicy(config)


class Interactive(Composed):
    """The ``Driver`` of an off-policy RL run: the collector its config picks (``off_policy``) and evaluation
    episodes (``Evaluator``). A subclass picks another collector (``collector_for``)."""

    def __init__(self, config: Any):
        # the eval env first: a bad env argument fails here with its usual message, before the training env
        # (perhaps in a process of its own, or N copies) is built
        eval_env = instantiate(config.Env, offer(config.Env, config.env, seed=int(config.seed), evaluation=True),
                               label="Env")
        collector = self.collector_for(config, int(eval_env.task_spec.info.get("num_envs", 1)))
        super().__init__(collector, Evaluator(config, eval_env, collector.spec))  # (vlog: an env that draws)

    def collector_for(self, config: Any, num_envs: int) -> Collector:
        """The training collector (``num_envs``: the task's ``env.num_envs``)."""
        return off_policy(config, num_envs)
