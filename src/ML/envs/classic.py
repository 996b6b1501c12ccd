"""Classic control (and any registered gymnasium id with a Box observation): ``Env=Classic env.task=ID``.

``Classic`` is a plain ``gymnasium.Wrapper``: ``reset(seed=...)`` and ``step(action)`` keep gymnasium's
API, observations come back as float32 numpy arrays, and ``task_spec`` tells the engine the shapes.
The evaluation environment (``evaluation=True``) seeds itself differently (``seed + 10000``), so a run's
training and evaluation episodes never share initial states unless ``reset`` is given a seed.
"""

from __future__ import annotations

import difflib
from typing import Any

import gymnasium
import numpy as np
from gymnasium import spaces

from ML.envs.base import TaskSpec
from ML.errors import UserError

EVAL_SEED_OFFSET = 10_000


def _unknown_task(task: str) -> UserError:
    ids = list(gymnasium.registry)
    close = difflib.get_close_matches(task, ids, n=3, cutoff=0.5)
    if not close:  # a version-less or lower-case name: match on the lower-cased id without its version
        lowered = {i.lower(): i for i in ids}
        close = [lowered[m] for m in difflib.get_close_matches(task.lower(), list(lowered), n=3, cutoff=0.5)]
    hint = f"did you mean {', '.join(close)}? " if close else ""
    return UserError(f"unknown gymnasium environment {task!r}: {hint}pass env.task=<a registered id> "
                     "such as CartPole-v1, Acrobot-v1, MountainCar-v0, Pendulum-v1")


def _make(task: str, kwargs: dict[str, Any]) -> gymnasium.Env:
    if not isinstance(task, str) or task not in gymnasium.registry:
        raise _unknown_task(str(task))
    try:
        return gymnasium.make(task, **kwargs)
    except gymnasium.error.DependencyNotInstalled as e:
        raise UserError(f"environment {task!r} needs a package that is not installed "
                        f"({str(e).splitlines()[0]}); install it or pick another env.task") from None
    except TypeError as e:
        raise UserError(f"could not build environment {task!r}: {e}; fix the env.* arguments") from None


class Classic(gymnasium.Wrapper):
    """A gymnasium environment with its ``TaskSpec``.

    Args:
        task: a registered gymnasium id (``CartPole-v1``, ``Acrobot-v1``, ``MountainCar-v0``, ``Pendulum-v1``).
        seed: seeds the first ``reset`` (when it is given no seed) and the action space.
        evaluation: the evaluation copy; it seeds itself with ``seed + 10000``.
        max_episode_steps: overrides the id's time limit.
        pixels: must be false: classic control observes states (a recipe written for DMC may set it).
        **kwargs: passed to ``gymnasium.make`` (e.g. ``env.render_mode=rgb_array``).
    """

    def __init__(self, task: str = "CartPole-v1", seed: int = 0, evaluation: bool = False,
                 max_episode_steps: int | None = None, pixels: bool = False, **kwargs: Any):
        if pixels:
            raise UserError(f"Env=Classic observes states, not pixels; pass env.pixels=false for {task}")
        if max_episode_steps is not None:
            kwargs["max_episode_steps"] = int(max_episode_steps)
        env = _make(task, kwargs)
        super().__init__(env)
        obs_space = env.observation_space
        if not isinstance(obs_space, spaces.Box):
            env.close()
            raise UserError(f"environment {task!r} has a {type(obs_space).__name__} observation space; "
                            "Env=Classic needs a Box (array) observation, pick another env.task")
        if obs_space.dtype != np.float32:
            self.observation_space = spaces.Box(obs_space.low.astype(np.float32),
                                                obs_space.high.astype(np.float32), dtype=np.float32)
        self.base_seed = int(seed) + (EVAL_SEED_OFFSET if evaluation else 0)
        self.evaluation = bool(evaluation)
        self._seeded = False
        self.action_space.seed(self.base_seed)
        self._action_start = 0
        action_space = env.action_space
        spec = env.spec
        info = {"reward_threshold": getattr(spec, "reward_threshold", None),
                "max_episode_steps": getattr(spec, "max_episode_steps", None)}
        if isinstance(action_space, spaces.Discrete):
            self._action_start = int(action_space.start)
            self.task_spec = TaskSpec(suite="Classic", task=task, obs_shape=tuple(obs_space.shape),
                                      discrete=True, num_actions=int(action_space.n), info=info)
        elif isinstance(action_space, spaces.Box):
            self.task_spec = TaskSpec(suite="Classic", task=task, obs_shape=tuple(obs_space.shape),
                                      discrete=False, action_shape=tuple(action_space.shape),
                                      action_low=float(np.min(action_space.low)),
                                      action_high=float(np.max(action_space.high)), info=info)
        else:
            env.close()
            raise UserError(f"environment {task!r} has a {type(action_space).__name__} action space; "
                            "Env=Classic supports Discrete and Box actions, pick another env.task")

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        if seed is None and not self._seeded:
            seed = self.base_seed
        self._seeded = True
        obs, info = self.env.reset(seed=seed, options=options)
        return np.asarray(obs, dtype=np.float32), info

    def step(self, action: Any):
        if self._action_start:
            action = int(action) + self._action_start
        obs, reward, terminated, truncated, info = self.env.step(action)
        return np.asarray(obs, dtype=np.float32), float(reward), bool(terminated), bool(truncated), info
