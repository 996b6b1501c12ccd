"""``env.num_envs=N`` for Atari: N games stepped together in ale-py's ``AtariVectorEnv`` (C++ threads), with the
single-env path's preprocessing (``ML.envs.atari.Atari``), for faster collection."""

from __future__ import annotations

from typing import Any

import numpy as np

from ML.envs.atari import Atari
from ML.errors import UserError


class AtariVector:
    """N copies of ``atari``'s game and settings in one ``AtariVectorEnv``.

    The vector env does frame skip with the max-pool over the last two frames, grayscale, the 84x84
    INTER_AREA resize, no-op starts, sticky actions, the full action set and the frame cap as ``Atari`` does;
    rewards stay raw and there is no FIRE on reset, as in ``Atari``. The frame stack is done here (the vector
    env's is asked for 1 frame), so a reset stack repeats its first frame as ``Atari``'s and the replay's do.
    Refused (a ``UserError``), because the vector env would differ: a lost life as a terminal (its
    ``episodic_life`` resets the whole game at every lost life, where ``Atari`` plays on), RGB observations,
    an ALE ``mode``/``difficulty``.

    In the RL driver (``ML.drivers.interactive``) one loop step is one env step: the N games step together
    (one batched ``act_batch``) every N loop steps, and the agent updates every loop step, as with one game,
    so ``frame = step × frame_skip`` holds. Each game has its own replay (``ML.replay_streams``: replay.h5,
    replay.env1.h5, ...). A checkpoint restarts every game from a seeded reset (the running episodes stay in
    the replays, unended) and a resume does the same, so a resumed run is the uninterrupted one.

    ``step`` autoresets on the next step (ale-py's ``NEXT_STEP``): an env whose episode ended returns its
    reset observation at the next step, that step's action ignored; ``restarted`` marks those envs.
    """

    def __init__(self, atari: Atari, num_envs: int, seed: int):
        info = atari.task_spec.info
        refused = [name for name, bad in (("env.terminal_on_life_loss=true", info["terminal_on_life_loss"]),
                                          ("env.grayscale=false", not info["grayscale"]),
                                          ("env.mode", info["mode"] is not None),
                                          ("env.difficulty", info["difficulty"] is not None)) if bad]
        if refused:
            raise UserError(f"env.num_envs={num_envs} (ale-py's AtariVectorEnv) cannot play with "
                            f"{', '.join(refused)} as the single env does; use env.num_envs=1 for that")
        from ale_py.vector_env import AtariVectorEnv

        self.num_envs = int(num_envs)
        self.frame_stack = int(info["frame_stack"])
        self.seed = int(seed)
        self.vector = AtariVectorEnv(
            info["rom"], self.num_envs, frameskip=info["frame_skip"], maxpool=info["max_pool"],
            grayscale=True, img_height=info["screen_size"], img_width=info["screen_size"], stack_num=1,
            noop_max=info["noop_max"], repeat_action_probability=info["sticky_actions"],
            full_action_space=info["full_action_space"], max_num_frames_per_episode=info["max_episode_frames"],
            episodic_life=False, reward_clipping=False, use_fire_reset=False)
        self._done = np.zeros(self.num_envs, bool)
        self.obs = np.zeros((self.num_envs, *atari.task_spec.obs_shape), np.uint8)

    def reset(self, seed: int) -> np.ndarray:
        """Every game from its start (env ``i`` seeded ``seed + i``); the stacked observations."""
        frames, _ = self.vector.reset(seed=int(seed) % 2**31)
        self.obs = np.repeat(frames, self.frame_stack, axis=1)
        self._done[:] = False
        return self.obs

    def step(self, actions: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``obs, reward, terminated, truncated, restarted`` for all N envs."""
        frames, reward, terminated, truncated, _ = self.vector.step(np.asarray(actions, np.int64))
        restarted = self._done.copy()
        obs = np.concatenate([self.obs[:, frames.shape[1]:], frames], axis=1)
        obs[restarted] = np.repeat(frames[restarted], self.frame_stack, axis=1)
        self.obs = obs
        self._done = terminated | truncated
        return obs, reward.astype(np.float64), terminated, truncated, restarted

    def close(self) -> None:
        self.vector.close()
