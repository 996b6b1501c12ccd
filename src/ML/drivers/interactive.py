"""Reinforcement learning: act in a training environment, store experience, evaluate on another."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ML.collectors import episode_seed
from ML.collectors.evaluation import Evaluator
from ML.errors import UserError
from ML.hyperparams import instantiate
from ML.hyperparams.instantiate import offer
from ML.hyperparams.paths import resolve
from ML.replay import Replay

__all__ = ["Interactive", "episode_seed"]


class Interactive:
    def __init__(self, config: Any):
        self.config = config
        self.seed = int(config.seed)
        self.offline = bool(config.get("offline"))
        # env_process=true: the training env steps in a process of its own while the agent updates; the eval
        # env is built here first, so a bad env argument fails in this process with its usual message
        self.eval_env = instantiate(config.Env, offer(config.Env, config.env, seed=self.seed, evaluation=True),
                                    label="Env")
        self.env_process = bool(config.get("env_process")) and not self.offline
        self.num_envs = int(self.eval_env.task_spec.info.get("num_envs", 1))
        if self.num_envs > 1 and self.env_process:
            raise UserError(f"env.num_envs={self.num_envs} steps its games in C++ threads already; "
                            "drop env_process=true")
        train_args = offer(config.Env, config.env, seed=self.seed, evaluation=False)
        if self.env_process:
            from ML.envs.process import EnvProcess

            self.env: Any = EnvProcess(resolve(config.Env, "Env"), train_args)
        else:
            self.env = instantiate(config.Env, train_args, label="Env")
        self.spec = self.env.task_spec
        self.frames_per_step = self.spec.action_repeat
        self.evaluator = Evaluator(config, self.eval_env, self.spec)  # (vlog=true: an env that draws itself)
        self.eval_env = self.evaluator.env
        self.run_dir: Path | None = None
        self.stream = bool(config.get("stream"))
        if self.offline and self.stream:
            raise UserError("offline=true learns from a saved replay and stream=true keeps none: pick one")
        if self.offline:
            self.frames_per_step = 0  # no environment frames are consumed while learning offline
        self.vector: Any = None  # env.num_envs > 1: ML.envs.atari_vector.AtariVector collects
        if self.num_envs > 1:
            if self.offline:
                raise UserError(f"env.num_envs={self.num_envs} collects from several games, offline=true from "
                                "none: drop env.num_envs")
            from ML.envs.atari_vector import AtariVector

            self.vector = AtariVector(self.env, self.num_envs)
        self._ended: list[tuple[float, int]] = []  # vector episodes that ended, reported one a step
        self.episode = 0
        self.replay: Any = None  # a Replay, or with env.num_envs > 1 ML.replay_streams.Streams
        self._return = 0.0
        self._length = 0
        self._actions: list[Any] = []  # the unfinished episode's actions, to rebuild it after a resume

    def open(self, run_dir: Path, resume: bool, state: dict[str, Any] | None = None) -> None:
        self.run_dir = run_dir
        space = self.env.action_space
        action_shape = () if self.spec.discrete else tuple(space.shape)
        state = state or {}
        self.evaluator.open(run_dir, state.get("evaluations", 0))
        if self.offline and not (run_dir / "replay.h5").exists():
            raise UserError(f"offline=true learns from a saved replay, but there is no {run_dir / 'replay.h5'}; "
                            "train with replay.save=true first, or copy a replay.h5 into the run directory")
        if self.stream:  # no stored experience: the agent learns from the newest transitions only
            path, capacity = None, int(self.config.batch_size) + 64
        else:
            path, capacity = run_dir / "replay.h5", int(self.config.replay.capacity)
        load = bool(resume or self.config.replay.load or self.offline)
        frame_stack = int(self.spec.info.get("frame_stack") or 1)
        if self.vector is not None:
            self._open_vector(path, capacity, action_shape, load, frame_stack, state)
            return
        self.replay = Replay(path, capacity, self.spec.obs_shape, self.env.observation_space.dtype, action_shape,
                             space.dtype, load=load, seed=self.seed, frame_stack=frame_stack,
                             state=state.get("replay"), zero_pad=self.spec.info.get("starts") == "dopamine")
        if self.offline and len(self.replay) == 0:
            raise UserError(f"offline=true learns from a saved replay, but {path} holds no transitions")
        self.episode = state.get("episode", 0)
        self._reset()
        # A resume lands mid-episode: the episode is seeded, so stepping its recorded actions again rebuilds
        # the environment and the replay exactly as they were at the checkpoint.
        for action in state.get("actions", ()):
            self._step_env(action)

    def _open_vector(self, path: Path | None, capacity: int, action_shape: tuple, load: bool, frame_stack: int,
                     state: dict[str, Any]) -> None:
        """One replay per game (``capacity`` shared out), and the games started (``_restart_games``)."""
        from ML.replay_streams import Streams

        self.replay = Streams(self.num_envs, path, max(capacity // self.num_envs, 2), self.spec.obs_shape,
                              np.uint8, action_shape, self.env.action_space.dtype, load=load, seed=self.seed,
                              frame_stack=frame_stack, states=state.get("replay"))
        self.episode = state.get("episode", 0)
        self._ended = [tuple(e) for e in state.get("ended", ())]
        self._restarts = max(state.get("restarts", 0) - 1, 0)  # a checkpoint's restart is done again here
        self._restart_games()

    def _restart_games(self) -> None:
        """Every game from a fresh seeded reset, its running episode kept in its replay, unended.

        Done at the start and at every checkpoint (``before_checkpoint``), where a resume does it too: the
        vector env's games cannot be rebuilt mid-episode one by one, so the run is the same with or without a
        resume.
        """
        obs = self.vector.reset(episode_seed(self.seed, 3, self._restarts))
        self._restarts += 1
        self.replay.start(obs)
        self._vector_returns = np.zeros(self.num_envs)
        self._vector_lengths = np.zeros(self.num_envs, np.int64)

    def _step_vector(self, agent: Any, step: int) -> None:
        """Receive the N games' step in flight, act on it (one batched act) and send the next; then, while the
        games step in C++ threads, store the received step's transitions (``_store``).

        So a loop step's ``agent.update`` samples from the replays without the N transitions in flight: at
        loop step ``s`` they hold the ``s - s % N`` transitions of the rounds before ``s``'s (one game's would
        hold ``s + 1``). Everything happens in the same order with or without a resume (``before_checkpoint``
        stores the step in flight), so the run stays exact.
        """
        received = self.vector.recv() if self.vector.pending else None
        self.vector.send(agent.act_batch(self.vector.obs, step))
        if received is not None:
            self._store(received)

    def _store(self, received: Any) -> None:
        """One vector step (an ``ML.envs.atari_vector.Round``) into the games' replays and episode counts."""
        self.replay.add_round(received)
        stepped = ~(received.skipped | received.restarted)  # the games whose step was a transition
        self._vector_returns[stepped] += received.reward[stepped]
        self._vector_lengths[stepped] += 1
        for i in np.flatnonzero(stepped & (received.terminated | received.truncated)):
            self._ended.append((float(self._vector_returns[i]), int(self._vector_lengths[i])))
            self._vector_returns[i], self._vector_lengths[i] = 0.0, 0
            self.episode += 1

    def _drain(self) -> None:
        """Store the vector step in flight, if any."""
        if self.vector is not None and self.vector.pending:
            self._store(self.vector.recv())

    def _reset(self) -> None:
        self.obs, _ = self.env.reset(seed=episode_seed(self.seed, 0, self.episode))
        self.replay.start(self.obs)
        self._return, self._length = 0.0, 0
        self._actions.clear()

    def _step_env(self, action: Any) -> bool:
        """One environment step into the replay; True when the episode ended."""
        return self._store_step(action, self.env.step(action))

    def _store_step(self, action: Any, result: tuple) -> bool:
        """A step's ``(obs, reward, terminated, truncated, info)`` into the replay; True when the episode ended."""
        self.obs, reward, terminated, truncated, _ = result
        self.replay.add(action, reward, self.obs, terminated, truncated)
        self._return += float(reward)
        self._length += 1
        self._actions.append(action)
        return terminated or truncated

    def step(self, agent: Any, step: int) -> dict[str, float]:
        if self.offline:  # learn from the saved replay alone; the environment is only for evaluation
            return agent.update(self.replay, step)
        if self.vector is not None:  # N games: one vector step every N loop steps, N env steps
            if step % self.num_envs == 0:
                self._step_vector(agent, step)
            metrics = agent.update(self.replay, step)
            if self._ended:
                episode_return, length = self._ended.pop(0)
                metrics = {**metrics, "episode_return": episode_return, "episode_length": length}
            return metrics
        action = agent.act(self.obs, step)
        if self.env_process:  # DrQ-v2's order: the update samples the replay before this step's transition
            self.env.send(action)
            metrics = agent.update(self.replay, step)
            ended = self._store_step(action, self.env.recv())
        else:
            ended = self._step_env(action)
            metrics = agent.update(self.replay, step)
        if ended:
            metrics = {**metrics, "episode_return": self._return, "episode_length": self._length}
            self.episode += 1
            self._reset()
        return metrics

    def evaluate(self, agent: Any, step: int, progress: Callable[[int, int], None] | None = None
                 ) -> dict[str, float]:
        """One eval.csv row (``ML.collectors.evaluation.Evaluator``)."""
        return self.evaluator.evaluate(agent, step, progress)

    def before_checkpoint(self) -> None:
        """With ``env.num_envs`` > 1: store the step in flight and restart the games (``_restart_games``)."""
        if self.vector is not None:
            self._drain()
            self._restart_games()

    def state(self) -> dict[str, Any]:
        """What a checkpoint needs to continue exactly (the replay writes its complete episodes first);
        ``before_checkpoint`` comes first."""
        if self.vector is not None:
            if self.vector.pending:
                raise RuntimeError("Interactive.state with a vector step in flight: call before_checkpoint()")
            return {"episode": self.episode, "evaluations": self.evaluator.evaluations, "actions": [],
                    "replay": self.replay.state(), "restarts": self._restarts, "ended": list(self._ended)}
        return {"episode": self.episode, "evaluations": self.evaluator.evaluations, "actions": list(self._actions),
                "replay": self.replay.state()}

    def close(self, keep: bool) -> None:
        self._drain()
        if self.replay is not None:
            self.replay.close(keep=keep)
        self.env.close()
        self.evaluator.close()
        if self.vector is not None:
            self.vector.close()
