"""Atari vector stepping (``env.num_envs`` > 1): N games step together in C++ threads
(``ML.envs.atari_vector.AtariVector``), each into a replay of its own (``ML.replay_streams.Streams``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ML.collectors import build_env, episode_seed
from ML.collectors.offpolicy import replay_place
from ML.drivers.settings import ReplaySettings
from ML.envs.atari_vector import AtariVector
from ML.envs.base import EnvSettings
from ML.replay_streams import Streams


class Vector:
    """One vector step (N env steps, one batched ``act_batch``) every N loop steps, so ``train_steps`` and
    the schedules count env steps as with one game; ended episodes are reported one a loop step.

    The games cannot be rebuilt mid-episode one by one, so at the start and at every checkpoint
    (``before_checkpoint``) all restart from a fresh seeded reset, their running episodes kept in the replays
    unended; a resume does the same, and the run is the same with or without one.
    """

    def __init__(self, replay: ReplaySettings, stream: bool, task: EnvSettings, seed: int, num_envs: int):
        self.settings, self.stream = replay, stream
        self.seed = seed
        self.num_envs = num_envs
        self.env = build_env(task, self.seed, evaluation=False)
        self.spec = self.env.task_spec
        self.frames_per_step = self.spec.action_repeat
        self.vector = AtariVector(self.env, num_envs)
        self.episode = 0
        self._replay: Streams | None = None  # open() makes it
        self._ended: list[tuple[float, int]] = []  # episodes that ended, reported one a loop step
        self._restarts = 0

    @property
    def replay(self) -> Streams:
        """The games' replays the agent learns from (``open`` makes them)."""
        if self._replay is None:
            raise RuntimeError("the collector's replay is used before open()")
        return self._replay

    def open(self, run_dir: Path, resume: bool, state: dict[str, Any] | None = None) -> None:
        """One replay per game (``replay.capacity`` shared out), and the games started."""
        state = state or {}
        path, capacity, load = replay_place(self.settings, self.stream, run_dir, resume)
        space = self.env.action_space
        self._replay = Streams(self.num_envs, path, max(capacity // self.num_envs, 2), self.spec.obs_shape,
                              np.uint8, () if self.spec.discrete else tuple(space.shape), space.dtype, load=load,
                              seed=self.seed, frame_stack=int(self.spec.info.get("frame_stack") or 1),
                              states=state.get("replay"))
        self.episode = state.get("episode", 0)
        self._ended = [tuple(e) for e in state.get("ended", ())]
        self._restarts = max(state.get("restarts", 0) - 1, 0)  # a checkpoint's restart is done again here
        self._restart_games()

    def _restart_games(self) -> None:
        """Every game from a fresh seeded reset, its running episode kept in its replay, unended."""
        obs = self.vector.reset(episode_seed(self.seed, 3, self._restarts))
        self._restarts += 1
        self.replay.start(obs)
        self._returns = np.zeros(self.num_envs)
        self._lengths = np.zeros(self.num_envs, np.int64)

    def collect(self, agent: Any, step: int) -> Streams:
        """On every N-th loop step: receive the N games' step in flight, act on it (one batched act) and send
        the next; then, while the games step in C++ threads, store the received step's transitions.

        So a loop step's ``agent.update`` samples from the replays without the N transitions in flight: at
        loop step ``s`` they hold the ``s - s % N`` transitions of the rounds before ``s``'s (one game's would
        hold ``s + 1``). Everything happens in the same order with or without a resume (``before_checkpoint``
        stores the step in flight), so the run stays exact.
        """
        if step % self.num_envs == 0:
            received = self.vector.recv() if self.vector.pending else None
            self.vector.send(agent.act_batch(self.vector.obs, step))
            if received is not None:
                self._store(received)
        return self.replay

    def _store(self, received: Any) -> None:
        """One vector step (an ``ML.envs.atari_vector.Round``) into the games' replays and episode counts."""
        self.replay.add_round(received)
        stepped = ~(received.skipped | received.restarted)  # the games whose step was a transition
        self._returns[stepped] += received.reward[stepped]
        self._lengths[stepped] += 1
        for i in np.flatnonzero(stepped & (received.terminated | received.truncated)):
            self._ended.append((float(self._returns[i]), int(self._lengths[i])))
            self._returns[i], self._lengths[i] = 0.0, 0
            self.episode += 1

    def finish(self) -> dict[str, float]:
        if not self._ended:
            return {}
        episode_return, length = self._ended.pop(0)
        return {"episode_return": episode_return, "episode_length": length}

    def _drain(self) -> None:
        """Store the vector step in flight, if any."""
        if self.vector.pending:
            self._store(self.vector.recv())

    def before_checkpoint(self) -> None:
        """Store the step in flight and restart the games (``_restart_games``)."""
        self._drain()
        self._restart_games()

    def state(self) -> dict[str, Any]:
        if self.vector.pending:
            raise RuntimeError("Vector.state with a vector step in flight: call before_checkpoint()")
        return {"episode": self.episode, "replay": self.replay.state(), "restarts": self._restarts,
                "ended": list(self._ended)}

    def close(self, keep: bool) -> None:
        self._drain()
        if self._replay is not None:
            self._replay.close(keep=keep)
        self.env.close()
        self.vector.close()
