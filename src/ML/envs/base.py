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


def evaluation_episodes(config: Any, info: dict[str, Any], last: bool) -> int:
    """Episodes an evaluation plays: ``evaluate_episodes``, or ``evaluate_episodes_final`` (when set) for the
    last evaluation of a run that reaches its protocol's budget (``info["budget_steps"]``, Atari-100k's 100k):
    a shorter run is not that protocol's score, so it keeps the short evaluation."""
    final = config.get("evaluate_episodes_final")
    if last and final is not None and int(config.get("train_steps") or 0) >= int(info.get("budget_steps") or 0):
        return int(final)
    return int(config.get("evaluate_episodes") or 0)
