"""Env=Atari on the real ale-py ROMs: preprocessing, seeding, protocols, life loss, errors (a few seconds)."""

from __future__ import annotations

import numpy as np
import pytest

from ML.envs.atari import Atari, games
from ML.errors import UserError
from ML.hyperparams import instantiate


def rollout(env: Atari, seed: int, steps: int = 50):
    obs, _ = env.reset(seed=seed)
    actions = np.random.default_rng(0).integers(env.action_space.n, size=steps)
    frames, rewards = [obs], []
    for a in actions:
        obs, reward, terminated, truncated, _ = env.step(a)
        frames.append(obs)
        rewards.append(reward)
        assert not (terminated or truncated)
    return np.stack(frames), rewards


def test_pong_default_preprocessing():
    env = Atari("pong")
    obs, _ = env.reset(seed=0)
    assert obs.shape == (4, 84, 84) and obs.dtype == np.uint8
    assert env.observation_space.shape == (4, 84, 84) and env.observation_space.contains(obs)
    obs, reward, terminated, truncated, _ = env.step(0)
    assert obs.shape == (4, 84, 84) and obs.dtype == np.uint8 and isinstance(reward, float)
    spec = env.task_spec
    assert (spec.suite, spec.task, spec.obs_shape, spec.discrete) == ("Atari", "pong", (4, 84, 84), True)
    assert spec.num_actions == 6 and spec.action_repeat == 4
    info = spec.info
    assert {k: info[k] for k in ("frame_skip", "sticky_actions", "noop_max", "max_episode_frames",
                                  "terminal_on_life_loss", "full_action_space", "frame_stack", "screen_size",
                                  "grayscale", "protocol")} == {
        "frame_skip": 4, "sticky_actions": 0.0, "noop_max": 30, "max_episode_frames": 108_000,
        "terminal_on_life_loss": False, "full_action_space": False, "frame_stack": 4, "screen_size": 84,
        "grayscale": True, "protocol": None}
    # the stack slides: the newest frame is last, the older ones move down
    nxt, *_ = env.step(0)
    assert np.array_equal(nxt[:3], obs[1:])
    env.close()


def test_colour_and_sizes():
    env = Atari("breakout", grayscale=False, frame_stack=2, screen_size=64)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (6, 64, 64) == env.task_spec.obs_shape and obs.dtype == np.uint8


def test_same_seed_same_episode():
    # sticky actions on, so the ALE's own random generator has to be seeded by reset(seed=...) too
    a, b = Atari("breakout", seed=1, sticky_actions=0.25), Atari("breakout", seed=2, sticky_actions=0.25)
    frames_a, rewards_a = rollout(a, seed=3)
    frames_b, rewards_b = rollout(b, seed=3)
    assert np.array_equal(frames_a, frames_b) and rewards_a == rewards_b
    frames_c, _ = rollout(a, seed=4)
    assert not np.array_equal(frames_a, frames_c)
    # with no seed, the first reset uses the constructor's seed
    first, _ = Atari("pong", seed=5).reset()
    assert np.array_equal(first, Atari("pong", seed=5).reset()[0])


def test_protocols_reach_task_spec():
    info = Atari("pong", protocol="atari100k").task_spec.info
    assert info["protocol"] == "atari100k" and info["sticky_actions"] == 0.0
    assert info["terminal_on_life_loss"] is True and info["budget_steps"] == 100_000
    assert info["budget_frames"] == 400_000
    env = Atari("pong", protocol="machado")
    info = env.task_spec.info
    assert (info["protocol"], info["sticky_actions"], info["full_action_space"], info["terminal_on_life_loss"]) \
        == ("machado", 0.25, True, False)
    assert env.task_spec.num_actions == 18 and env.unwrapped.ale.getFloat("repeat_action_probability") == 0.25
    # a setting given explicitly wins over the protocol's
    info = Atari("pong", protocol="machado", sticky_actions=0.1, noop_max=7).task_spec.info
    assert info["sticky_actions"] == pytest.approx(0.1) and info["noop_max"] == 7


def test_game_names():
    assert {"pong", "breakout", "mspacman", "privateeye", "upndown", "kungfumaster", "montezumarevenge"} <= set(games())
    env = Atari("ms_pacman")  # the ALE's snake_case id is accepted and named as UnifiedML names games
    assert env.task_spec.task == "mspacman" and env.task_spec.info["ale_id"] == "ALE/MsPacman-v5"


def test_unknown_game_and_protocol():
    with pytest.raises(UserError, match=r"unknown Atari game 'mspacmn'.*mspacman"):
        Atari("mspacmn")
    with pytest.raises(UserError, match=r"unknown Atari protocol 'atari200k'.*atari100k, machado"):
        Atari("pong", protocol="atari200k")
    with pytest.raises(UserError, match="sticky_actions"):
        Atari("pong", sticky_actions=1.5)


def play_until_life_lost(env: Atari, limit: int = 2000):
    env.reset(seed=0)
    lives = env.unwrapped.ale.lives()
    for i in range(limit):
        _, _, terminated, truncated, info = env.step(1 if i % 10 == 0 else 0)  # FIRE now and then
        if env.unwrapped.ale.lives() < lives or terminated or truncated:
            return terminated, info
    raise AssertionError("no life lost")


def test_life_loss_ends_training_episodes_only():
    train = Atari("breakout", protocol="atari100k")
    terminated, info = play_until_life_lost(train)
    assert terminated and info.get("life_loss") and train.unwrapped.ale.lives() > 0
    lives = train.unwrapped.ale.lives()
    obs, _ = train.reset(seed=99)  # continues the same game: no new lives
    assert train.unwrapped.ale.lives() == lives and obs.shape == (4, 84, 84)

    evaluation = Atari("breakout", protocol="atari100k", evaluation=True)
    terminated, info = play_until_life_lost(evaluation)
    assert not terminated and "life_loss" not in info and evaluation.unwrapped.ale.lives() > 0


def test_built_by_name_as_the_loop_does():
    env = instantiate("Atari", {"game": "pong", "frame_stack": 2, "seed": 0, "evaluation": True}, label="Env")
    assert isinstance(env, Atari) and env.task_spec.obs_shape == (2, 84, 84)
    with pytest.raises(UserError, match="does not take argument 'task'"):
        instantiate("Atari", {"task": "pong", "seed": 0, "evaluation": False}, label="Env")
