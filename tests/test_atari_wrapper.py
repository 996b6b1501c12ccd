"""The fast Atari path (``ML.envs.atari.Atari`` steps the ALE itself) against gymnasium's real wrappers:
``AtariPreprocessing`` + ``FrameStackObservation`` over the same ``ALE/<Game>-v5`` env, played with the same
seeds and actions, give identical frames, rewards, terminations and truncations, across episode ends."""

from __future__ import annotations

import gymnasium
import numpy as np
import pytest
from gymnasium.wrappers import AtariPreprocessing, FrameStackObservation

from ML.envs.atari import Atari


def reference(env: Atari) -> gymnasium.Env:
    """gymnasium's own wrappers with the settings ``env`` recorded in its task spec."""
    s = env.task_spec.info
    base = gymnasium.make(s["ale_id"], frameskip=1, repeat_action_probability=s["sticky_actions"],
                          full_action_space=s["full_action_space"], max_num_frames_per_episode=s["max_episode_frames"],
                          obs_type="grayscale" if s["grayscale"] else "rgb")
    pre = AtariPreprocessing(base, noop_max=s["noop_max"], frame_skip=s["frame_skip"], screen_size=s["screen_size"],
                             terminal_on_life_loss=False, grayscale_obs=s["grayscale"], scale_obs=False)
    return FrameStackObservation(pre, s["frame_stack"], padding_type="reset")


def channels_first(stack: np.ndarray) -> np.ndarray:
    """gymnasium's ``(stack, H, W[, 3])`` as the engine's ``(stack · C, H, W)``."""
    stack = np.asarray(stack)
    return stack if stack.ndim == 3 else stack.transpose(0, 3, 1, 2).reshape(-1, *stack.shape[1:3])


def play(env: Atari, ref: gymnasium.Env, steps: int, seed: int) -> dict[str, int]:
    """Both envs through the same episodes; every transition compared. Returns what the episodes ended by."""
    rng = np.random.default_rng(seed)
    ends = {"terminated": 0, "truncated": 0, "reward": 0}
    episode = 0
    obs, _ = env.reset(seed=seed)
    want, _ = ref.reset(seed=seed)
    assert np.array_equal(obs, channels_first(want))
    for _ in range(steps):
        action = int(rng.integers(env.action_space.n))
        obs, reward, terminated, truncated, info = env.step(action)
        want, want_reward, want_terminated, want_truncated, want_info = ref.step(action)
        assert np.array_equal(obs, channels_first(want)), f"frames differ (episode {episode})"
        assert (reward, terminated, truncated) == (want_reward, want_terminated, want_truncated)
        assert info["lives"] == want_info["lives"]
        ends["reward"] += reward != 0
        if terminated or truncated:
            ends["terminated" if terminated else "truncated"] += 1
            episode += 1
            obs, _ = env.reset(seed=seed + episode)
            want, _ = ref.reset(seed=seed + episode)
            assert np.array_equal(obs, channels_first(want))
    return ends


@pytest.mark.parametrize("game, settings, steps, least", [
    ("breakout", {}, 700, {"terminated": 1}),                                     # defaults: a game over
    ("pong", {"max_episode_frames": 600}, 500, {"truncated": 3}),                 # the frame cap truncates
    ("mspacman", {"protocol": "machado", "max_episode_frames": 1500}, 300, {}),  # sticky actions, 18 actions
    ("pong", {"grayscale": False, "frame_stack": 2, "noop_max": 5, "max_episode_frames": 800}, 250,
     {"truncated": 1}),                                                           # colour
])
def test_fast_path_matches_gymnasium_wrappers(game: str, settings: dict, steps: int, least: dict):
    env = Atari(game, **settings)
    ref = reference(env)
    try:
        ends = play(env, ref, steps, seed=7)
    finally:
        env.close()
        ref.close()
    assert ends["reward"] > 0, "no reward in the comparison: it compared too little"
    assert all(ends[k] >= n for k, n in least.items()), ends


def test_life_loss_ends_a_training_episode_exactly_when_gymnasium_reports_a_lost_life():
    env = Atari("breakout", terminal_on_life_loss=True)
    ref = reference(env)  # plays to game over; its lives say when one was lost
    rng = np.random.default_rng(3)
    try:
        env.reset(seed=3)
        ref.reset(seed=3)
        lives = ref.unwrapped.ale.lives()
        for _ in range(400):
            action = int(rng.integers(env.action_space.n))
            obs, reward, terminated, truncated, info = env.step(action)
            want, want_reward, _, _, want_info = ref.step(action)
            assert np.array_equal(obs, channels_first(want)) and reward == want_reward
            lost = want_info["lives"] < lives
            lives = want_info["lives"]
            assert terminated == lost and info.get("life_loss", False) == lost
            if lost:
                break
        else:
            pytest.fail("no life was lost in 400 random steps")
    finally:
        env.close()
        ref.close()
