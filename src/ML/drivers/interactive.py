"""Reinforcement learning: a collector feeds the agent (``ML.collectors``), an evaluator scores it on a
separately seeded copy of the task."""

from __future__ import annotations

from typing import Any

from ML.collectors import Collector, build_env
from ML.collectors.evaluation import Evaluator
from ML.drivers.composed import Composed
from ML.drivers.settings import InteractiveSettings, ReplaySettings
from ML.envs.base import EnvSettings, EvaluationSettings
from ML.errors import UserError
from ML.runsettings import RunSettings


def off_policy(replay: ReplaySettings, how: InteractiveSettings, task: EnvSettings, seed: int,
               num_envs: int) -> Collector:
    """The collector of an off-policy run: a saved replay alone (``offline=true``), N Atari games
    (``env.num_envs``), one env in a process of its own (``env_process=true``) or one env."""
    from ML.collectors.offpolicy import Offline, OffPolicy, Overlapped

    if how.offline:
        if num_envs > 1:
            raise UserError(f"env.num_envs={num_envs} collects from several games, offline=true from none: "
                            "drop env.num_envs")
        return Offline(replay, how.stream, task, seed)
    if num_envs > 1:
        if how.env_process:
            raise UserError(f"env.num_envs={num_envs} steps its games in C++ threads already; "
                            "drop env_process=true")
        from ML.collectors.vector import Vector

        return Vector(replay, how.stream, task, seed, num_envs)
    return (Overlapped if how.env_process else OffPolicy)(replay, how.stream, task, seed)


class Interactive(Composed):
    """The ``Driver`` of an off-policy RL run: the collector its settings pick (``off_policy``) and evaluation
    episodes (``Evaluator``). A subclass picks another collector (``collector_for``). The config is read here,
    once, into typed settings (``ML.drivers.settings.DRIVERS``) that the parts take."""

    def __init__(self, config: Any):
        run, task, evaluation = (RunSettings.from_config(config), EnvSettings.from_config(config),
                                 EvaluationSettings.from_config(config))
        seed = int(run.seed)
        # the eval env first: a bad env argument fails here with its usual message, before the training env
        # (perhaps in a process of its own, or N copies) is built
        eval_env = build_env(task, seed, evaluation=True)
        collector = self.collector_for(config, task, seed, int(eval_env.task_spec.info.get("num_envs", 1)))
        super().__init__(collector, Evaluator(evaluation, task, seed, int(run.train_steps), eval_env,
                                              collector.spec))  # (vlog: an env that draws)

    def collector_for(self, config: Any, task: EnvSettings, seed: int, num_envs: int) -> Collector:
        """The training collector of ``task`` (``num_envs``: its ``env.num_envs``), from its settings in
        ``config``."""
        return off_policy(ReplaySettings.from_config(config), InteractiveSettings.from_config(config), task, seed,
                          num_envs)
