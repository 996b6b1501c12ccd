"""Reinforcement learning: a collector feeds the agent (``ML.collectors``), an evaluator scores it on a
separately seeded copy of the task."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ML.collectors import Collector
from ML.collectors.evaluation import Evaluator
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


class Interactive:
    """The ``Driver`` of an RL run: each loop step, the collector's experience goes to ``agent.update``;
    evaluation episodes come from ``Evaluator``. Subclasses pick another collector (``collector``)."""

    def __init__(self, config: Any):
        # the eval env first: a bad env argument fails here with its usual message, before the training env
        # (perhaps in a process of its own, or N copies) is built
        eval_env = instantiate(config.Env, offer(config.Env, config.env, seed=int(config.seed), evaluation=True),
                               label="Env")
        self.collector = self.collector_for(config, int(eval_env.task_spec.info.get("num_envs", 1)))
        self.spec = self.collector.spec
        self.frames_per_step = self.collector.frames_per_step
        self.evaluator = Evaluator(config, eval_env, self.spec)  # (vlog=true: an env that draws itself)

    def collector_for(self, config: Any, num_envs: int) -> Collector:
        return off_policy(config, num_envs)

    @property
    def episode(self) -> int:
        return self.collector.episode

    def open(self, run_dir: Path, resume: bool, state: dict[str, Any] | None = None) -> None:
        state = state or {}
        self.evaluator.open(run_dir, state.get("evaluations", 0))
        self.collector.open(run_dir, resume, state)

    def step(self, agent: Any, step: int) -> dict[str, float]:
        experience = self.collector.collect(agent, step)
        metrics = agent.update(experience, step) if experience is not None else {}
        return {**metrics, **self.collector.finish()}

    def evaluate(self, agent: Any, step: int, progress: Callable[[int, int], None] | None = None
                 ) -> dict[str, float]:
        """One eval.csv row (``ML.collectors.evaluation.Evaluator``)."""
        return self.evaluator.evaluate(agent, step, progress)

    def before_checkpoint(self) -> None:
        self.collector.before_checkpoint()

    def state(self) -> dict[str, Any]:
        """The collector's state and the count of evaluations done (``before_checkpoint`` comes first)."""
        return {**self.collector.state(), "evaluations": self.evaluator.evaluations}

    def close(self, keep: bool) -> None:
        self.collector.close(keep)
        self.evaluator.close()
