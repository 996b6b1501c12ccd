"""Evaluation episodes: greedy play on the separately seeded evaluation env, one eval.csv row's values."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ML import stops
from ML.collectors import build_env, episode_seed
from ML.envs.base import EnvSettings, EvaluationSettings, evaluation_episodes
from ML.errors import UserError
from ML.video import as_frame, write_mp4


def _silent(done: int, total: int) -> None:
    """No evaluation progress to show."""


class Evaluator:
    """Mean return over ``evaluation_episodes`` greedy episodes on ``env``, the evaluation copy of the task
    (``evaluate_episodes``; the last evaluation of a run at its protocol's budget: ``evaluate_episodes_final``);
    episode ``i`` of evaluation ``k`` is seeded ``episode_seed(seed, 1, k, i)``, so a resumed run evaluates the
    same episodes.

    An agent with ``act_batch`` plays them ``evaluate_envs`` at a time, one episode per env, in one batched
    forward per step (dopamine's parallel evaluation); with ``vlog=true`` the first episode is filmed
    (videos/). The episodes are abortable (``ML.stops``): only the count of evaluations done is kept, once
    they end. It reads ``EvaluationSettings``, the task (to build more evaluation envs), the run's seed and
    its ``train_steps`` (which evaluation is the last).
    """

    def __init__(self, evaluation: EvaluationSettings, task: EnvSettings, seed: int, train_steps: int, env: Any,
                 spec: Any):
        self.settings, self.task = evaluation, task
        self.seed, self.train_steps = seed, train_steps
        self.env = env
        self.spec = spec
        self.vlog = bool(evaluation.vlog)
        self._channels = spec.obs_shape[0] // int(spec.info.get("frame_stack") or 1)
        if self.vlog and len(spec.obs_shape) != 3:  # vector observations: let the env draw itself
            try:
                rendering = build_env(task, self.seed, evaluation=True, render_mode="rgb_array")
            except UserError:
                raise UserError(f"vlog=true: {spec.suite} task {spec.task} has no image observations "
                                "and its Env takes no render_mode; use pixels (env.pixels=true) or vlog=false")\
                    from None
            self.env.close()
            self.env = rendering
        self.evaluations = 0
        self.run_dir: Path | None = None
        self._envs: list[Any] = []  # the batched evaluation's envs, built at the first evaluation

    def open(self, run_dir: Path, evaluations: int = 0) -> None:
        self.run_dir, self.evaluations = run_dir, int(evaluations)

    def evaluate(self, agent: Any, step: int, progress: Callable[[int, int], None] | None = None
                 ) -> dict[str, float]:
        """One eval.csv row's values; ``progress(done, total)`` after each finished episode."""
        episodes = evaluation_episodes(self.settings, self.train_steps, self.spec.info,
                                       last=step >= self.train_steps)
        seeds = [episode_seed(self.seed, 1, self.evaluations, i) for i in range(episodes)]
        tick = progress or _silent
        agent.eval()
        try:
            with stops.abortable():
                if episodes > 1 and not self.vlog and hasattr(agent, "act_batch"):
                    returns, lengths = self.batched(agent, step, seeds, tick)
                else:
                    returns, lengths = self.sequential(agent, step, seeds, tick)
        finally:
            agent.train()
        self.evaluations += 1
        score = float(np.mean(returns)) if returns else float("nan")
        return {"score": score, "score_std": float(np.std(returns)) if returns else float("nan"),
                "episodes": len(returns), "length": float(np.mean(lengths)) if lengths else float("nan")}

    def sequential(self, agent: Any, step: int, seeds: list[int],
                   tick: Callable[[int, int], None] = _silent) -> tuple[list[float], list[int]]:
        """Each seed's episode in turn (the first filmed with ``vlog=true``)."""
        returns, lengths = [], []
        for i, seed in enumerate(seeds):
            obs, _ = self.env.reset(seed=seed)
            frames = [self._frame(obs)] if self.vlog and i == 0 else None
            done, total, length = False, 0.0, 0
            while not done:
                obs, reward, terminated, truncated, _ = self.env.step(agent.act(obs, step, eval_mode=True))
                total += float(reward)
                length += 1
                done = terminated or truncated
                if frames is not None:
                    frames.append(self._frame(obs))
            if frames and self.run_dir is not None:
                write_mp4(self.run_dir / "videos" / f"step_{step}.mp4", frames)
            returns.append(total)
            lengths.append(length)
            tick(i + 1, len(seeds))
        return returns, lengths

    def batched(self, agent: Any, step: int, seeds: list[int],
                tick: Callable[[int, int], None] = _silent) -> tuple[list[float], list[int]]:
        """Each seed's episode on an env of its own, ``evaluate_envs`` envs at a time, the live ones stepped
        together (one ``act_batch`` per step); an env whose episode ended leaves the batch, as dopamine's
        one-to-one evaluation (``DataEfficientAtariRunner._run_parallel``) drops it."""
        width = min(len(seeds), int(self.settings.evaluate_envs or 16))
        if len(self._envs) < width:
            self._envs += [build_env(self.task, self.seed, evaluation=True) for _ in range(width - len(self._envs))]
        returns: list[float] = [0.0] * len(seeds)
        lengths: list[int] = [0] * len(seeds)
        finished = 0
        for first in range(0, len(seeds), width):
            live = list(range(first, min(first + width, len(seeds))))
            obs = [self._envs[i - first].reset(seed=seeds[i])[0] for i in live]
            while live:
                actions = agent.act_batch(np.stack(obs), step, eval_mode=True)
                still, obs = [], []
                for i, action in zip(live, actions, strict=True):
                    o, reward, terminated, truncated, _ = self._envs[i - first].step(action)
                    returns[i] += float(reward)
                    lengths[i] += 1
                    if terminated or truncated:
                        finished += 1
                        tick(finished, len(seeds))
                    else:
                        still.append(i)
                        obs.append(o)
                live = still
        return returns, lengths

    def _frame(self, obs: np.ndarray) -> np.ndarray:
        frame = as_frame(obs, self._channels)
        return frame if frame is not None else self.env.render()

    def close(self) -> None:
        self.env.close()
        for env in self._envs:
            env.close()


def in_turn(evaluators: list[Any], evaluate: Callable[[int, Callable[[int, int], None]], dict[str, float]],
            progress: Callable[[int, int], None] | None) -> list[dict[str, float]]:
    """Several tasks' evaluations, one after another (``evaluate(i, tick)``), counted on one progress bar. A stop
    in any of them puts every evaluator's count (``evaluations``; None: one without) back as it was, so a resume
    evaluates them all again, from the same counts and seeds."""
    counts = [getattr(e, "evaluations", None) for e in evaluators]
    rows = []
    try:
        for i in range(len(evaluators)):
            def tick(done: int, total: int, i: int = i) -> None:
                if progress is not None:
                    progress(i * max(total, 1) + done, len(evaluators) * max(total, 1))

            rows.append(evaluate(i, tick))
    except stops.Stop:
        for evaluator, count in zip(evaluators, counts, strict=True):
            if count is not None:
                evaluator.evaluations = count
        raise
    return rows
