"""On-policy rollouts: N copies of the training env stepped together, ``n_steps`` vector steps a rollout."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import numpy as np

from ML.agents.base import AgentSettings
from ML.collectors import build_env, episode_seed
from ML.envs.base import EnvSettings
from ML.errors import UserError
from ML.hyperparams.paths import resolve


def rollout_shape(agent: AgentSettings) -> tuple[int, int]:
    """(envs, steps per env) of a rollout: the agent's ``num_envs`` and ``n_steps`` (its defaults unless set)."""
    params = inspect.signature(resolve(agent.Agent, "Agent")).parameters
    args = agent.agent or {}
    shape = []
    for name in ("num_envs", "n_steps"):
        value = args.get(name, params[name].default if name in params else 1)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise UserError(f"agent.{name}={value!r}: a rollout needs a whole number ≥ 1; fix agent.{name}")
        shape.append(value)
    return shape[0], shape[1]


class Rollouts:
    """``num_envs`` copies of the training env, one vector step every ``num_envs`` loop steps (so
    ``train_steps`` and evaluation schedules count env steps, as for every other agent), and every
    ``n_steps`` vector steps a rollout for ``agent.update``.

    The agent acts through ``explore(obs, step) -> dict``: an ``action`` per env (``env_action``, if given,
    is what the envs receive instead, e.g. clipped) and whatever else it wants back in the rollout (the
    observation as it saw it, log-probabilities, values), each an array with the envs on the first axis.
    A rollout is those arrays stacked ``[n_steps, num_envs, ...]`` plus ``reward``, ``terminated``,
    ``truncated`` (the episode ended after that step), ``final_obs`` (the last observation of a truncated
    episode, zeros elsewhere, to bootstrap from) and ``last_obs`` (each env's observation after the rollout).
    An env whose episode ends is reset at once, with its next episode seed (``episode_seed(seed, 4, env,
    episode)``).

    Resume is exact: ``state()`` keeps each env's episode count and the actions of its unfinished episode
    (replayed on ``open``), and the rollout so far.
    """

    def __init__(self, task: EnvSettings, seed: int, num_envs: int, n_steps: int):
        self.seed = seed
        self.envs = [build_env(task, self.seed, evaluation=False) for _ in range(num_envs)]
        self.spec = self.envs[0].task_spec
        if int(self.spec.info.get("num_envs", 1)) > 1:
            self.close(False)
            raise UserError("env.num_envs steps several games in one env; an on-policy agent steps its own "
                            "copies (agent.num_envs): drop env.num_envs")
        self.frames_per_step = self.spec.action_repeat
        self.num_envs, self.n_steps = num_envs, n_steps
        self.episode = 0

    def open(self, run_dir: Path, resume: bool, state: dict[str, Any] | None = None) -> None:
        """The envs started (no replay: ``run_dir`` and ``resume`` are unused), or continued from ``state``."""
        state = state or {}
        self.episode = int(state.get("episode", 0))
        self._episodes = [int(e) for e in state.get("episodes", [0] * self.num_envs)]
        self._ended = [tuple(e) for e in state.get("ended", ())]
        self._steps: list[dict[str, np.ndarray]] = []
        saved = state.get("rollout") or {}
        for t in range(int(state.get("t", 0))):
            self._steps.append({k: v[t] for k, v in saved.items()})
        self._returns = np.zeros(self.num_envs)
        self._lengths = np.zeros(self.num_envs, np.int64)
        self._actions: list[list[Any]] = [[] for _ in range(self.num_envs)]
        first = []
        for i in range(self.num_envs):
            first.append(self._reset(i))
        self.obs = np.stack(first)
        for i, actions in enumerate(state.get("actions", ())):  # the unfinished episodes, step by step again
            for action in actions:
                obs, reward, _, _, _ = self.envs[i].step(action)
                self.obs[i] = obs
                self._returns[i] += float(reward)
                self._lengths[i] += 1
                self._actions[i].append(action)

    def _reset(self, i: int) -> np.ndarray:
        obs, _ = self.envs[i].reset(seed=episode_seed(self.seed, 4, i, self._episodes[i]))
        self._returns[i], self._lengths[i] = 0.0, 0
        self._actions[i].clear()
        return np.asarray(obs)

    def collect(self, agent: Any, step: int) -> dict[str, np.ndarray] | None:
        """A vector step every ``num_envs`` loop steps; the rollout when it completes one, else None."""
        return self._vector_step(agent, step) if step % self.num_envs == 0 else None

    def finish(self) -> dict[str, float]:
        """One ended episode a loop step, as they end between vector steps."""
        if not self._ended:
            return {}
        episode_return, length = self._ended.pop(0)
        return {"episode_return": episode_return, "episode_length": length}

    def _vector_step(self, agent: Any, step: int) -> dict[str, np.ndarray] | None:
        out = agent.explore(self.obs.copy(), step)  # (self.obs changes in place below)
        sent = out.pop("env_action", out["action"])
        n = self.num_envs
        reward, terminated, truncated = np.zeros(n, np.float32), np.zeros(n, bool), np.zeros(n, bool)
        final = np.zeros_like(self.obs)
        for i, env in enumerate(self.envs):
            obs, r, term, trunc, _ = env.step(sent[i])
            reward[i], terminated[i], truncated[i] = r, term, trunc and not term
            self._returns[i] += float(r)
            self._lengths[i] += 1
            self._actions[i].append(sent[i])
            if term or trunc:
                if not term:
                    final[i] = obs
                self._ended.append((float(self._returns[i]), int(self._lengths[i])))
                self.episode += 1
                self._episodes[i] += 1
                obs = self._reset(i)
            self.obs[i] = obs
        self._steps.append({**out, "reward": reward, "terminated": terminated, "truncated": truncated,
                            "final_obs": final})
        if len(self._steps) < self.n_steps:
            return None
        rollout = {k: np.stack([s[k] for s in self._steps]) for k in self._steps[0]}
        rollout["last_obs"] = self.obs.copy()
        self._steps = []
        return rollout

    def before_checkpoint(self) -> None:
        """Nothing in flight: a vector step completes within its loop step."""

    def state(self) -> dict[str, Any]:
        steps = self._steps
        return {"episode": self.episode, "episodes": list(self._episodes), "ended": list(self._ended),
                "actions": [np.asarray(a) for a in self._actions], "t": len(steps),
                "rollout": {k: np.stack([s[k] for s in steps]) for k in steps[0]} if steps else {}}

    def close(self, keep: bool) -> None:
        """The envs closed (no replay to keep)."""
        for env in self.envs:
            env.close()
