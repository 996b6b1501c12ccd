"""Collectors: small parts that gather an agent's experience, composed by a driver (``ML.drivers``).

A driver is the run loop's one partner (``ML.drivers.Driver``); a collector does one job inside it — one env
stepped off-policy into a replay (``offpolicy.OffPolicy``; ``Overlapped`` with the env in a process of its
own, ``env_process=true``), a saved replay alone (``offpolicy.Offline``, ``offline=true``), N Atari games in
C++ threads into a replay per game (``vector.Vector``, ``env.num_envs``), on-policy rollouts of N envs
(``rollout.Rollouts``) or a dataset's batches (``dataset.Batches``); an evaluator scores the agent: episodes
(``evaluation.Evaluator``) or a test set (``dataset.HeldOut``). A driver (``ML.drivers.composed.Composed``) is
one collector and one evaluator. Every collector resumes exactly: ``state()`` is what a checkpoint keeps,
``open(..., state)`` continues from it. A collector takes typed settings (``ML.drivers.settings``) and the
run's seed, which its driver reads from the config once; none holds the config.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from ML.agents.base import Agent
from ML.envs.base import EnvSettings, TaskSpec
from ML.hyperparams import instantiate
from ML.hyperparams.instantiate import offer


def episode_seed(*key: int) -> int:
    """A seed per episode, so an episode replays exactly after a resume at its boundary."""
    return int(np.random.SeedSequence([abs(int(k)) for k in key]).generate_state(1)[0])


def env_args(task: EnvSettings, seed: int, evaluation: bool) -> dict[str, Any]:
    """The ``Env``'s arguments: the user's ``env.*``, plus the engine's seed and evaluation flag if it takes them."""
    return offer(task.Env, task.env, seed=seed, evaluation=evaluation)


def build_env(task: EnvSettings, seed: int, evaluation: bool, **extra: Any) -> Any:
    """The task's environment: a training copy, or (``evaluation=True``) a separately seeded evaluation copy."""
    return instantiate(task.Env, {**env_args(task, seed, evaluation), **extra}, label="Env")


@runtime_checkable
class Collector(Protocol):
    """What a driver calls on a collector of training experience. Arguments before ``/`` are positional.

    A loop step is ``collect``, the agent's update on what it returned, then ``finish``: two halves, so that
    work can overlap the update (an env stepping in its own process) and still end within the loop step.
    """

    spec: TaskSpec          # the task the experience comes from
    frames_per_step: int    # env frames (or samples) one loop step consumes

    @property
    def episode(self) -> int:
        """Training episodes (or epochs) completed."""

    def open(self, run_dir: Path, resume: bool, state: dict[str, Any] | None = None, /) -> None:
        """Start collecting for the run in ``run_dir`` (where a replay is kept; ``resume``: continue it);
        ``state`` (from ``state()``) continues a checkpointed run exactly."""

    def collect(self, agent: Agent, step: int, /) -> Any:
        """The loop step's collection before the update: the experience now ready for ``agent.update``,
        or None when there is none to learn from this step."""

    def finish(self) -> dict[str, float]:
        """The rest of the loop step, after the update: metrics for train.csv (an episode's return and
        length when one ended)."""

    def before_checkpoint(self) -> None:
        """Settle work in flight, so that ``state()`` is what a resume continues from."""

    def state(self) -> dict[str, Any]:
        """What a checkpoint needs to continue exactly; changes nothing."""

    def close(self, keep: bool, /) -> None:
        """Release the environments; ``keep``: keep the replay on disk."""


@runtime_checkable
class Evaluation(Protocol):
    """What a driver calls on its evaluator: ``evaluation.Evaluator`` (episodes on an env) or
    ``dataset.HeldOut`` (a test set). Only the count of evaluations done is state."""

    evaluations: int

    def open(self, run_dir: Path, evaluations: int = 0, /) -> None:
        """Evaluate for the run in ``run_dir``, ``evaluations`` already done."""

    def evaluate(self, agent: Agent, step: int, progress: Callable[[int, int], None] | None = None
                 ) -> dict[str, float]:
        """One eval.csv row's values, ``score`` among them (``ML.drivers.Driver.evaluate``)."""

    def close(self) -> None:
        """Release the evaluation envs."""
