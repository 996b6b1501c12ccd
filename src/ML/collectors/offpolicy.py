"""Off-policy stepping: one training env, one env step per loop step, every transition into a replay."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ML.collectors import build_env, env_args, episode_seed
from ML.drivers.settings import ReplaySettings
from ML.envs.base import EnvSettings
from ML.errors import UserError
from ML.hyperparams.paths import resolve
from ML.replay import Replay


def replay_place(replay: ReplaySettings, stream: bool, run_dir: Path, resume: bool) -> tuple[Path | None, int, bool]:
    """(file, capacity, load) of a run's replay: ``run_dir/replay.h5`` of ``replay.capacity``, loaded on a
    resume or ``replay.load=true``; with ``stream=true`` none on disk, just room for the newest transitions."""
    load = bool(resume or replay.replay["load"])
    if stream:
        return None, int(replay.batch_size) + 64, load
    return run_dir / "replay.h5", int(replay.replay["capacity"]), load


class OffPolicy:
    """The training env stepped with the agent's ``act``, each transition stored before the update (so a
    step's update may sample it); an episode's return is reported on the step it ends.

    Resume is exact: episodes are seeded (``episode_seed(seed, 0, episode)``) and ``state()`` keeps the
    unfinished episode's actions, which ``open`` steps again to rebuild the env and the replay as they were.
    It reads ``ReplaySettings``, ``stream`` (``InteractiveSettings``), the task and the run's seed.
    """

    def __init__(self, replay: ReplaySettings, stream: bool, task: EnvSettings, seed: int, env: Any = None):
        self.settings, self.stream = replay, stream
        self.seed = seed
        self.env = env if env is not None else build_env(task, self.seed, evaluation=False)
        self.spec = self.env.task_spec
        self.frames_per_step = self.spec.action_repeat
        self.episode = 0
        self._replay: Replay | None = None  # open() makes it
        self.obs: Any = None
        self._return, self._length = 0.0, 0
        self._actions: list[Any] = []  # the unfinished episode's actions, to rebuild it after a resume
        self._ended = False

    @property
    def replay(self) -> Replay:
        """The replay the agent learns from (``open`` makes it)."""
        if self._replay is None:
            raise RuntimeError("the collector's replay is used before open()")
        return self._replay

    def open(self, run_dir: Path, resume: bool, state: dict[str, Any] | None = None) -> None:
        state = state or {}
        self._open_replay(*replay_place(self.settings, self.stream, run_dir, resume), state)
        self._start(state)

    def _open_replay(self, path: Path | None, capacity: int, load: bool, state: dict[str, Any]) -> None:
        space = self.env.action_space
        self._replay = Replay(path, capacity, self.spec.obs_shape, self.env.observation_space.dtype,
                             () if self.spec.discrete else tuple(space.shape), space.dtype, load=load,
                             seed=self.seed, frame_stack=int(self.spec.info.get("frame_stack") or 1),
                             state=state.get("replay"), zero_pad=self.spec.info.get("starts") == "dopamine")

    def _start(self, state: dict[str, Any]) -> None:
        """The episode in progress: reset with its seed, its recorded actions stepped again."""
        self.episode = state.get("episode", 0)
        self._reset()
        for action in state.get("actions", ()):
            self._store(action, self.env.step(action))

    def _reset(self) -> None:
        self.obs, _ = self.env.reset(seed=episode_seed(self.seed, 0, self.episode))
        self.replay.start(self.obs)
        self._return, self._length = 0.0, 0
        self._actions.clear()

    def _store(self, action: Any, result: tuple[Any, ...]) -> bool:
        """A step's ``(obs, reward, terminated, truncated, info)`` into the replay; True when the episode ended."""
        self.obs, reward, terminated, truncated, _ = result
        self.replay.add(action, reward, self.obs, terminated, truncated)
        self._return += float(reward)
        self._length += 1
        self._actions.append(action)
        return bool(terminated or truncated)

    def collect(self, agent: Any, step: int) -> Replay:
        action = agent.act(self.obs, step)
        self._ended = self._store(action, self.env.step(action))
        return self.replay

    def finish(self) -> dict[str, float]:
        """An ended episode's return and length, and the next episode started (after the update: the
        update samples the replay before its next episode's first frame is in)."""
        if not self._ended:
            return {}
        self._ended = False
        metrics = {"episode_return": self._return, "episode_length": self._length}
        self.episode += 1
        self._reset()
        return metrics

    def before_checkpoint(self) -> None:
        """Nothing in flight between loop steps."""

    def state(self) -> dict[str, Any]:
        """The episode count, the unfinished episode's actions and the replay's state (it writes its complete
        episodes first)."""
        return {"episode": self.episode, "actions": list(self._actions), "replay": self.replay.state()}

    def close(self, keep: bool) -> None:
        if self._replay is not None:
            self._replay.close(keep=keep)
        self.env.close()


class Overlapped(OffPolicy):
    """``env_process=true``: the training env steps in a process of its own (``ML.envs.process``) while the
    agent updates — DrQ-v2's train.py order: act, update, store — so the update samples the replay before
    this step's transition is in."""

    def __init__(self, replay: ReplaySettings, stream: bool, task: EnvSettings, seed: int):
        from ML.envs.process import EnvProcess

        super().__init__(replay, stream, task, seed,
                         EnvProcess(resolve(task.Env, "Env"), env_args(task, seed, evaluation=False)))
        self._action: Any = None

    def collect(self, agent: Any, step: int) -> Replay:
        self._action = agent.act(self.obs, step)
        self.env.send(self._action)
        return self.replay

    def finish(self) -> dict[str, float]:
        self._ended = self._store(self._action, self.env.recv())
        return super().finish()


class Offline(OffPolicy):
    """``offline=true``: the agent learns from a saved replay alone; no env steps, so no frames count.

    The training env is still built (it gives the task's spec) and reset once, its first frame starting an
    episode in the replay as an online run's does, so both open the replay alike."""

    def __init__(self, replay: ReplaySettings, stream: bool, task: EnvSettings, seed: int):
        if stream:
            raise UserError("offline=true learns from a saved replay and stream=true keeps none: pick one")
        super().__init__(replay, stream, task, seed)
        self.frames_per_step = 0

    def open(self, run_dir: Path, resume: bool, state: dict[str, Any] | None = None) -> None:
        path = run_dir / "replay.h5"
        if not path.exists():
            raise UserError(f"offline=true learns from a saved replay, but there is no {path}; "
                            "train with replay.save=true first, or copy a replay.h5 into the run directory")
        state = state or {}
        self._open_replay(path, int(self.settings.replay["capacity"]), True, state)
        if len(self.replay) == 0:
            raise UserError(f"offline=true learns from a saved replay, but {path} holds no transitions")
        self._start(state)

    def collect(self, agent: Any, step: int) -> Replay:
        return self.replay

    def finish(self) -> dict[str, float]:
        return {}
