"""Env=Classic: any registered gymnasium id with array observations, its TaskSpec, seeding, errors."""

from __future__ import annotations

import numpy as np
import pytest

from ML.envs.classic import Classic
from ML.errors import UserError
from ML.hyperparams import instantiate


def test_cartpole_spec_and_plain_gymnasium_api() -> None:
    env = instantiate("Classic", {"task": "CartPole-v1", "seed": 0, "evaluation": False}, label="Env")
    spec = env.task_spec
    assert (spec.suite, spec.task, spec.obs_shape, spec.discrete, spec.num_actions) == \
        ("Classic", "CartPole-v1", (4,), True, 2)
    assert spec.action_repeat == 1
    assert spec.info == {"reward_threshold": 475.0, "max_episode_steps": 500}
    obs, info = env.reset(seed=3)
    assert obs.dtype == np.float32 and obs.shape == (4,) and isinstance(info, dict)
    obs, reward, terminated, truncated, info = env.step(1)
    assert obs.dtype == np.float32 and reward == 1.0 and terminated is False and truncated is False


def test_acrobot_and_continuous_pendulum_specs() -> None:
    acrobot = Classic("Acrobot-v1").task_spec
    assert acrobot.obs_shape == (6,) and acrobot.num_actions == 3 and acrobot.info["reward_threshold"] == -100
    pendulum = Classic("Pendulum-v1")
    spec = pendulum.task_spec
    assert not spec.discrete and spec.num_actions is None
    assert spec.action_shape == (1,) and (spec.action_low, spec.action_high) == (-2.0, 2.0)
    assert spec.info["reward_threshold"] is None and spec.info["max_episode_steps"] == 200
    pendulum.reset()
    obs, *_ = pendulum.step(np.array([0.5], np.float32))
    assert obs.dtype == np.float32


def test_seeding_reproduces_and_eval_env_differs() -> None:
    first = Classic("CartPole-v1", seed=5).reset()[0]
    again = Classic("CartPole-v1", seed=5).reset()[0]
    evaluation = Classic("CartPole-v1", seed=5, evaluation=True).reset()[0]
    other = Classic("CartPole-v1", seed=6).reset()[0]
    assert np.array_equal(first, again)
    assert not np.array_equal(first, evaluation) and not np.array_equal(first, other)
    # an explicit reset seed wins over the built-in one
    assert np.array_equal(Classic("CartPole-v1", seed=5, evaluation=True).reset(seed=5)[0], first)


def test_time_limit_truncates() -> None:
    env = Classic("Pendulum-v1", max_episode_steps=7)
    env.reset()
    flags = [env.step(np.zeros(1, np.float32))[3] for _ in range(7)]
    assert flags == [False] * 6 + [True]


def test_unknown_or_unsupported_ids_are_one_line_errors() -> None:
    with pytest.raises(UserError, match=r"unknown gymnasium environment 'Cartpole-v1'.*CartPole-v1.*env\.task="):
        Classic("Cartpole-v1")
    with pytest.raises(UserError, match="did you mean Acrobot"):
        Classic("acrobot")
    with pytest.raises(UserError, match="Discrete observation space") as err:
        Classic("FrozenLake-v1")
    assert "\n" not in str(err.value)
