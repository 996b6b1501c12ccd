"""What every task (RL environment or dataset) tells the engine about itself."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ML.settings import Settings


@dataclass(frozen=True)
class EnvSettings(Settings):
    """An RL task: the environment class and its constructor arguments (``env.task``, ``env.game``...)."""

    Env: Any                    # Classic, Atari, DMC, MuJoCo, or MyFile.MyEnv (null: no environment)
    env: Mapping[str, Any]      # its arguments; a list ``env.task`` trains the tasks together



@dataclass(frozen=True)
class EvaluationSettings(Settings):
    """An RL driver's evaluations (``ML.collectors.evaluation``, ``evaluation_episodes``); declared beside
    ``EnvSettings`` so that this module, below the drivers, can take them."""

    evaluate_episodes: int              # episodes per evaluation
    evaluate_episodes_final: int | None  # episodes of the last evaluation at the protocol's budget (null: as above)
    evaluate_envs: int                  # episodes played at once, one env each
    vlog: bool                          # save a video of each evaluation's first episode (videos/)

@dataclass
class TaskSpec:
    """Shapes for building agents, identity for the run directory, metadata for normalization.

    ``info`` is recorded in run.json under ``"env"``: protocol settings (frame skip, sticky actions...)
    and what normalization needs (``num_classes``, ``reward_threshold``...).
    """

    suite: str                      # run-directory suite: Classic, Classify, Atari, DMC
    task: str                       # CartPole-v1, Digits, pong, cheetah_run
    obs_shape: tuple[int, ...]
    discrete: bool = True
    num_actions: int | None = None  # discrete actions
    action_shape: tuple[int, ...] | None = None  # continuous actions
    action_low: float | None = None
    action_high: float | None = None
    num_classes: int | None = None  # classification
    action_repeat: int = 1          # env frames per agent step
    info: dict[str, Any] = field(default_factory=dict)


def evaluation_episodes(evaluation: EvaluationSettings, train_steps: int, info: dict[str, Any], last: bool) -> int:
    """Episodes an evaluation plays: ``evaluate_episodes``, or ``evaluate_episodes_final`` (when set) for the
    last evaluation of a run whose ``train_steps`` reach its protocol's budget (``info["budget_steps"]``,
    Atari-100k's 100k): a shorter run is not that protocol's score, so it keeps the short evaluation."""
    final = evaluation.evaluate_episodes_final
    if last and final is not None and train_steps >= int(info.get("budget_steps") or 0):
        return int(final)
    return int(evaluation.evaluate_episodes or 0)
