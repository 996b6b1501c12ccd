"""``env.num_envs=N`` for Atari: N games stepped together in ale-py's ``AtariVectorEnv`` (C++ threads), with the
single-env path's preprocessing (``ML.envs.atari.Atari``), for faster collection."""

from __future__ import annotations

import os
from typing import Any, NamedTuple

import numpy as np

from ML.envs.atari import Atari
from ML.errors import UserError


class Round(NamedTuple):
    """One step of all N games. Game ``i`` gave a transition (``actions[i]`` from its previous observation to
    ``obs[i]``) unless ``restarted[i]`` (``obs[i]`` starts a new episode) or ``skipped[i]`` (neither: a lost
    life's continuation step ended the game, whose reset comes at the next step)."""

    actions: np.ndarray
    obs: np.ndarray
    reward: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    restarted: np.ndarray
    skipped: np.ndarray


class AtariVector:
    """N copies of ``atari``'s game and settings in one ``AtariVectorEnv``.

    The vector env does frame skip with the max-pool over the last two frames, grayscale, the 84x84
    INTER_AREA resize, no-op starts, sticky actions, the full action set and the frame cap as ``Atari`` does;
    rewards stay raw and there is no FIRE on reset, as in ``Atari``. The frame stack is done here (the vector
    env's is asked for 1 frame), so a reset stack repeats its first frame as ``Atari``'s and the replay's do.
    A lost life as a terminal (``atari.life_loss``) is done here as ``Atari`` does it, from the ``lives`` the
    vector env reports (its ``episodic_life`` would reset the whole game instead): the step that loses a life
    is ``terminated`` and the game plays on, the next step is a NOOP whose observation starts the next episode.
    Refused (a ``UserError``), because the vector env would differ: RGB observations, an ALE
    ``mode``/``difficulty``, dopamine's episode starts (``env.starts=dopamine``, the atari100k protocol's).

    In its collector (``ML.collectors.vector``) one loop step is one env step: the N games step together
    (one batched ``act_batch``) every N loop steps, and the agent updates every loop step, as with one game,
    so ``frame = step × frame_skip`` holds. Each game has its own replay (``ML.replay_streams``: replay.h5,
    replay.env1.h5, ...). A checkpoint restarts every game from a seeded reset (the running episodes stay in
    the replays, unended) and a resume does the same, so a resumed run is the uninterrupted one.

    ``send`` starts a step and returns at once (the games run in C++ threads), ``recv`` waits for it, so the
    caller's Python work can run in between; ``step`` is both. The vector env autoresets on the next step
    (ale-py's ``NEXT_STEP``): an env whose episode ended returns its reset observation at the next step, that
    step's action ignored; ``Round.restarted`` marks those envs.
    """

    def __init__(self, atari: Atari, num_envs: int):
        info = atari.task_spec.info
        refused = [name for name, bad in (("env.grayscale=false", not info["grayscale"]),
                                          ("env.mode", info["mode"] is not None),
                                          ("env.difficulty", info["difficulty"] is not None),
                                          ("env.starts=dopamine (no-op steps, zeroed stacks)",
                                           info.get("starts") == "dopamine")) if bad]
        if refused:
            raise UserError(f"env.num_envs={num_envs} (ale-py's AtariVectorEnv) cannot play with "
                            f"{', '.join(refused)} as the single env does; use env.num_envs=1 for that"
                            + (" (or env.starts=gymnasium, which the published atari100k runs did not use)"
                               if info.get("starts") == "dopamine" else ""))
        from ale_py.vector_env import AtariVectorEnv

        self.num_envs = int(num_envs)
        self.frame_stack = int(info["frame_stack"])
        self.life_loss = bool(atari.life_loss)
        self.vector = AtariVectorEnv(
            info["rom"], self.num_envs, frameskip=info["frame_skip"], maxpool=info["max_pool"],
            grayscale=True, img_height=info["screen_size"], img_width=info["screen_size"], stack_num=1,
            noop_max=info["noop_max"], repeat_action_probability=info["sticky_actions"],
            full_action_space=info["full_action_space"], max_num_frames_per_episode=info["max_episode_frames"],
            episodic_life=False, reward_clipping=False, use_fire_reset=False,
            num_threads=min(self.num_envs, os.cpu_count() or 1))
        self.obs = np.zeros((self.num_envs, *atari.task_spec.obs_shape), np.uint8)
        self.pending = False  # a step was sent and not yet received
        self._actions = np.zeros(self.num_envs, np.int64)
        self._lives = np.zeros(self.num_envs, np.int64)
        self._done = np.zeros(self.num_envs, bool)  # the last step ended an episode: the next one starts one
        self._continue = np.zeros(self.num_envs, bool)  # ... by a lost life: the next step is a NOOP

    def reset(self, seed: int) -> np.ndarray:
        """Every game from its start (env ``i`` seeded ``seed + i``); the stacked observations."""
        if self.pending:
            raise RuntimeError("AtariVector.reset with a step in flight: recv() it first")
        frames, info = self.vector.reset(seed=int(seed) % 2**31)
        self.obs = np.repeat(frames, self.frame_stack, axis=1)
        self._lives = np.asarray(info["lives"], np.int64)
        self._done[:] = False
        self._continue[:] = False
        return self.obs

    def send(self, actions: Any) -> None:
        """Start one step of all N games (a lost life's next action is a NOOP, action 0 in every set)."""
        self._actions = np.where(self._continue, 0, np.asarray(actions, np.int64))
        self.vector.send(self._actions)
        self.pending = True

    def recv(self) -> Round:
        """Wait for the step ``send`` started; ``self.obs`` becomes its stacked observations."""
        frames, reward, terminated, truncated, info = self.vector.recv()
        self.pending = False
        lives = np.asarray(info["lives"], np.int64)
        game_over = terminated | truncated
        skipped = self._continue & game_over  # as Atari.reset: the continuation ended the game, so reset it
        restarted = self._done & ~skipped
        lost = self.life_loss & ~self._done & ~game_over & (lives < self._lives)
        terminated = terminated | lost
        obs = np.concatenate([self.obs[:, frames.shape[1]:], frames], axis=1)
        obs[restarted] = np.repeat(frames[restarted], self.frame_stack, axis=1)
        self.obs = obs
        self._lives = lives
        self._done = terminated | truncated
        self._continue = lost
        return Round(self._actions, obs, reward.astype(np.float64), terminated, truncated, restarted, skipped)

    def step(self, actions: Any) -> Round:
        self.send(actions)
        return self.recv()

    def close(self) -> None:
        if self.pending:
            self.recv()
        self.vector.close()
