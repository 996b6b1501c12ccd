"""Env=DMC on the real dm_control suite: states, pixels through MUJOCO_GL=egl, seeding, errors."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from ML.envs.dmc import DMC
from ML.errors import UserError
from ML.hyperparams import instantiate


def test_mujoco_gl_defaults_to_egl():
    assert os.environ.get("MUJOCO_GL")  # set on import of ML.envs.dmc (egl unless the user chose one)


def test_states_cartpole_balance():
    env = DMC("cartpole_balance", pixels=False)
    spec = env.task_spec
    assert (spec.suite, spec.task, spec.discrete, spec.action_repeat) == ("DMC", "cartpole_balance", False, 2)
    assert spec.obs_shape == (5,) and spec.action_shape == (1,)
    assert (spec.action_low, spec.action_high) == (-1.0, 1.0)
    assert env.action_space.dtype == np.float32 and env.action_space.shape == (1,)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (5,) and obs.dtype == np.float32
    steps, total = 0, 0.0
    while True:
        obs, reward, terminated, truncated, _ = env.step(env.action_space.sample())
        steps += 1
        total += reward
        assert 0.0 <= reward <= 2.0  # two summed per-step rewards in [0, 1]
        if terminated or truncated:
            break
    assert steps == 500 and truncated and not terminated  # 1000 physics-control steps at action repeat 2
    assert obs.dtype == np.float32 and total > 0
    env.close()


def test_same_seed_same_initial_state():
    env, other = DMC("cartpole_swingup", pixels=False, seed=0), DMC("cartpole_swingup", pixels=False, seed=9)
    a, _ = env.reset(seed=7)
    env.step(np.ones(1))
    b, _ = other.reset(seed=7)
    c, _ = env.reset(seed=8)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    # with no seed, the first reset uses the constructor's seed
    assert np.array_equal(DMC("cartpole_swingup", pixels=False, seed=3).reset()[0],
                          DMC("cartpole_swingup", pixels=False, seed=3).reset()[0])


def test_pixels_cartpole_balance():
    env = DMC("cartpole_balance", fast_render=True)
    assert env.task_spec.obs_shape == (9, 84, 84)
    info = env.task_spec.info
    assert {k: info[k] for k in ("pixels", "size", "camera", "frame_stack", "action_repeat", "fast_render")} \
        == {"pixels": True, "size": 84, "camera": 0, "frame_stack": 3, "action_repeat": 2, "fast_render": True}
    obs, _ = env.reset(seed=0)
    assert obs.shape == (9, 84, 84) and obs.dtype == np.uint8 and obs.std() > 0  # a real image
    assert np.array_equal(obs[:3], obs[6:])  # the first stack repeats the first frame
    nxt, *_ = env.step(np.ones(1, np.float32))
    assert np.array_equal(nxt[:6], obs[3:]) and not np.array_equal(nxt[6:], obs[6:])
    again = DMC("cartpole_balance", fast_render=True, seed=5).reset(seed=0)[0]
    assert np.array_equal(obs, again)


def test_default_render_and_quadruped_camera():
    env = DMC("quadruped_walk", size=32, frame_stack=1)
    assert env.task_spec.info["camera"] == 2 and env.task_spec.info["fast_render"] is False
    obs, _ = env.reset(seed=0)
    assert obs.shape == (3, 32, 32) and obs.dtype == np.uint8
    assert env.task_spec.action_shape == (12,)
    env.step(np.ones(12, np.float32))  # [-1, 1] rescaled to quadruped's own bounds


def test_task_names_and_errors():
    assert DMC("cup_catch", pixels=False).task_spec.info["domain"] == "ball_in_cup"
    assert DMC("ball_in_cup_catch", pixels=False).task_spec.obs_shape == (8,)
    assert DMC("point_mass_easy", pixels=False).task_spec.info["dmc_task"] == "easy"
    assert DMC("finger_turn_hard", pixels=False).task_spec.info["domain"] == "finger"
    with pytest.raises(UserError, match=r"unknown DMC task 'cheetah_rn'.*cheetah_run"):
        DMC("cheetah_rn")
    env = instantiate("DMC", {"task": "walker_walk", "pixels": False, "seed": 0, "evaluation": True}, label="Env")
    assert env.task_spec.obs_shape == (24,) and env.task_spec.action_shape == (6,)


def test_broken_renderer_is_one_clear_error():
    """A MUJOCO_GL whose backend cannot load: pixels fail with the fix; states still work."""
    code = (
        "from ML.envs.dmc import DMC\n"
        "from ML.errors import UserError\n"
        "try:\n"
        "    DMC('cartpole_balance')\n"
        "except UserError as e:\n"
        "    print('ERROR', e)\n"
        "print('STATES', DMC('cartpole_balance', pixels=False).reset(seed=0)[0].shape)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "MUJOCO_GL": "no-such-backend"})
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    error = next(line for line in lines if line.startswith("ERROR"))
    assert "cannot render DMC pixels with MUJOCO_GL=no-such-backend" in error
    assert "set MUJOCO_GL=osmesa with libosmesa6 installed, or env.pixels=false" in error
    assert "STATES (5,)" in lines
