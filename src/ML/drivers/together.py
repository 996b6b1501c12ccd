"""Several tasks of one kind trained by one agent: ``env.task=[CartPole-v1,Acrobot-v1]`` (docs/together.md).

One training and one evaluation environment per task; one replay per task (``replay.h5``, ``replay.env1.h5``,
as ``ML.replay_streams`` keeps one per game), sampled in equal shares so every update learns each task alike.
Training goes round-robin by episode: task 0 plays an episode, then task 1, ...; ``train_steps`` is the run's
total (``together_schedule=proportional``: the next episode goes to the task with the fewest frames, so each
ends near ``train_steps / k``). Observations reach the agent as ``[task index, observation, zero padding]`` so
that one replay batch holds all tasks and the agent's ``ML.blocks.together.PerTask`` network routes each row to
its task's parts.
Each task counts its own frames (eval.csv ``frame.<task>``), and its protocol card, with those frames as its
budget, goes to run.json ``env.tasks[i].protocol`` when the run completes (``ended_info``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ML import published
from ML.collectors import build_env, episode_seed
from ML.collectors.evaluation import Evaluator, in_turn
from ML.drivers.settings import ReplaySettings, TogetherSettings
from ML.envs.base import EnvSettings, EvaluationSettings, TaskSpec
from ML.errors import UserError
from ML.replay_streams import Streams
from ML.runinfo import protocol_card
from ML.runsettings import RunSettings

# what tasks trained together share (the agent's body) and keep apart; recorded in run.json
SHARED = ["Eyes", "Pool", "Trunk", "Model", "optimizer", "exploration schedule"]
PER_TASK = ["input adapter (Linear to the body's width)", "output head (Linear to the task's actions)",
            "replay", "training and evaluation environments"]
BUDGET = {"episodes": "train_steps in all, tasks in turn one episode each",
          "proportional": "train_steps in all, each episode to the task with the fewest frames so far"}


def _refuse(evaluation: EvaluationSettings, task: EnvSettings, tasks: list[Any]) -> None:
    """Settings a together run does not take (each names its fix; ``offline``, ``stream`` and ``env_process``,
    which no part of a together run reads, the entry refuses: ``ML.claims``)."""
    if len(tasks) < 2 or not all(isinstance(t, str) for t in tasks) or len(set(tasks)) != len(tasks):
        raise UserError(f"env.task={tasks}: tasks trained together are two or more different task names; "
                        "pass e.g. env.task=[CartPole-v1,Acrobot-v1] (or -m env.task=A,B for one run each)")
    if evaluation.vlog:
        raise UserError(f"vlog=true is not supported with several tasks in env.task={tasks}; drop vlog")
    if int((task.env or {}).get("num_envs") or 1) > 1:
        raise UserError(f"env.num_envs is not supported with several tasks in env.task={tasks}; drop it")


class Together:
    """The ``Driver`` of an ``Env`` with a list ``env.task``: the tasks' envs and replays, one agent."""

    def __init__(self, config: Any):
        run, given, evaluation = (RunSettings.from_config(config), EnvSettings.from_config(config),
                                  EvaluationSettings.from_config(config))
        self.replay_settings = ReplaySettings.from_config(config)
        self.schedule = TogetherSettings.from_config(config).together_schedule
        self.seed = int(run.seed)
        self.tasks = list(given.env["task"])
        _refuse(evaluation, given, self.tasks)
        self.envs, self.evaluators = [], []
        self._card = run, evaluation, published.agent_card(config)  # every task's protocol card: the run's settings
        for task in self.tasks:
            one = EnvSettings(given.Env, {**dict(given.env), "task": task})
            evaluation_env = build_env(one, self.seed, evaluation=True)
            self.envs.append(build_env(one, self.seed, evaluation=False))
            self.evaluators.append(Evaluator(evaluation, one, self.seed, int(run.train_steps), evaluation_env,
                                             self.envs[-1].task_spec))
        specs = [env.task_spec for env in self.envs]
        self.specs = specs
        for spec in specs:
            if not spec.discrete or len(spec.obs_shape) != 1 or spec.action_repeat != 1:
                kind = "continuous actions" if not spec.discrete else f"observations of shape {list(spec.obs_shape)}"
                raise UserError(f"env.task={self.tasks}: {spec.task} has {kind}; tasks trained together are all "
                                "of one kind, vector observations and discrete actions; list only such tasks")
        self.width = max(s.obs_shape[0] for s in specs)
        tasks_info = [{"task": s.task, "obs_shape": list(s.obs_shape), "num_actions": int(s.num_actions or 0),
                       "reward_threshold": s.info.get("reward_threshold")} for s in specs]
        self.spec = TaskSpec(suite=specs[0].suite, task="+".join(self.tasks), obs_shape=(1 + self.width,),
                             discrete=True, num_actions=max(int(s.num_actions or 0) for s in specs),
                             info={"tasks": tasks_info, "together": {
                                 "shared": SHARED, "per_task": PER_TASK, "replay_share": "equal",
                                 "budget": BUDGET[self.schedule]}})
        self.frames_per_step = 1
        self.episode = 0
        self.current = 0
        self.replay: Any = None
        self._return, self._length = 0.0, 0
        self._actions: list[int] = []
        self.frames: list[int] | None = [0] * len(self.tasks)  # each task's env frames (None: not recorded)

    def _pad(self, i: int, obs: np.ndarray) -> np.ndarray:
        out = np.zeros(1 + self.width, np.float32)
        out[0] = i
        out[1:1 + len(obs)] = obs
        return out

    def open(self, run_dir: Path, resume: bool, state: dict[str, Any] | None = None) -> None:
        state = state or {}
        capacity = max(int(self.replay_settings.replay["capacity"]) // len(self.tasks), 2)
        self.replay = Streams(len(self.tasks), run_dir / "replay.h5", capacity, self.spec.obs_shape, np.float32,
                              (), np.int64, load=bool(resume or self.replay_settings.replay["load"]), seed=self.seed,
                              states=state.get("replay"), equal=True)
        self.episode = state.get("episode", 0)
        for evaluator in self.evaluators:
            evaluator.open(run_dir, state.get("evaluations", 0))
        self.current = state.get("current", 0)
        self._reset()
        for action in state.get("actions", ()):  # rebuild the unfinished (seeded) episode, as Interactive does
            self._step_env(action)
        if state:  # the checkpoint's counts, the unfinished episode's frames among them (None before they were kept)
            self.frames = state.get("frames")

    def _reset(self) -> None:
        i = self.current
        obs, _ = self.envs[i].reset(seed=episode_seed(self.seed, 0, self.episode))
        self.obs = self._pad(i, obs)
        self.replay[i].start(self.obs)
        self._return, self._length = 0.0, 0
        self._actions.clear()

    def _step_env(self, action: int) -> bool:
        i = self.current
        obs, reward, terminated, truncated, _ = self.envs[i].step(action)
        self.obs = self._pad(i, obs)
        self.replay[i].add(action, reward, self.obs, terminated, truncated)
        self._return += float(reward)
        self._length += 1
        if self.frames is not None:
            self.frames[i] += 1
        self._actions.append(int(action))
        return bool(terminated or truncated)

    def step(self, agent: Any, step: int) -> dict[str, float]:
        ended = self._step_env(agent.act(self.obs, step))
        metrics: dict[str, float] = agent.update(self.replay, step)
        if ended:
            task = self.tasks[self.current]
            metrics = {**metrics, "episode_return": self._return, "episode_length": self._length,
                       f"episode_return.{task}": self._return}
            self.episode += 1
            self.current = self._next()
            self._reset()
        return metrics

    def _next(self) -> int:
        """Whose episode comes next (``together_schedule``): the next task in turn, or the task with the fewest
        frames so far (the first on a tie)."""
        if self.schedule == "proportional" and self.frames is not None:
            return int(np.argmin(self.frames))
        return (self.current + 1) % len(self.tasks)

    def evaluate(self, agent: Any, step: int, progress: Callable[[int, int], None] | None = None
                 ) -> dict[str, float]:
        """Every task's ``Evaluator`` in turn, the agent seeing that task's observations tagged and padded;
        ``score`` is the mean of the tasks' mean returns and ``score.<task>`` each task's (eval.csv's columns).
        A stop in task ``i``'s episodes leaves every count as it was: a resume evaluates them all again."""
        rows = in_turn(self.evaluators, lambda i, tick: self.evaluators[i].evaluate(Tagged(agent, i, self._pad), step,
                                                                                    progress=tick), progress)
        row = {f"score.{task}": values["score"] for task, values in zip(self.tasks, rows, strict=True)}
        frames = {} if self.frames is None else {f"frame.{t}": n for t, n in zip(self.tasks, self.frames, strict=True)}
        return {"score": float(np.mean(list(row.values()))), "episodes": rows[-1]["episodes"], **row, **frames}

    def ended_info(self, agent: Any) -> dict[str, Any]:
        """run.json ``env.tasks`` with each task's protocol card (``ML.runinfo.protocol_card`` of that task as
        it was played: its own action set and episode cap, its frames as its budget, one evaluation env as
        ``Tagged`` plays it), for the pipeline to compare each task with runs of it alone."""
        tasks = []
        for i, (entry, spec) in enumerate(zip(self.spec.info["tasks"], self.specs, strict=True)):
            frames = None if self.frames is None else self.frames[i]
            card = protocol_card(spec, Tagged(agent, i, self._pad), *self._card, 1, frames)
            if frames is None:
                card.pop("frame_budget")
                card.pop("final_score")
            tasks.append({**entry, "protocol": card})
        return {"tasks": tasks}

    def before_checkpoint(self) -> None:
        """Nothing in flight: the tasks step in this process."""

    def state(self) -> dict[str, Any]:
        return {"episode": self.episode, "evaluations": self.evaluators[0].evaluations, "current": self.current,
                "actions": list(self._actions), "replay": self.replay.state(),
                "frames": None if self.frames is None else list(self.frames)}

    def close(self, keep: bool) -> None:
        if self.replay is not None:
            self.replay.close(keep=keep)
        for env in self.envs:
            env.close()
        for evaluator in self.evaluators:
            evaluator.close()


class Tagged:
    """The agent as one task's ``Evaluator`` sees it: that task's observations reach it tagged with the task's
    index and padded (``[i, obs, zeros]``), as every observation of a together run does."""

    def __init__(self, agent: Any, task: int, pad: Callable[[int, np.ndarray], np.ndarray]):
        self.agent, self.task, self.pad = agent, task, pad
        if hasattr(agent, "eval_eps"):  # what its protocol card reads (no act_batch: one evaluation env at a time)
            self.eval_eps = agent.eval_eps

    def act(self, obs: np.ndarray, step: int, eval_mode: bool = False) -> Any:
        return self.agent.act(self.pad(self.task, obs), step, eval_mode=eval_mode)

    def eval(self) -> Any:
        return self.agent.eval()

    def train(self, mode: bool = True) -> Any:
        return self.agent.train(mode)
