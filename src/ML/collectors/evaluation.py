"""Evaluation episodes: greedy play on the separately seeded evaluation env, one eval.csv row's values."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium
import numpy as np

from ML.collectors import episode_seed
from ML.errors import UserError
from ML.hyperparams import instantiate
from ML.hyperparams.instantiate import offer
from ML.video import as_frame, write_mp4

_VECTOR_WIDTH = 16  # most evaluation envs stepped together (a protocol's 100 final episodes: 7 rounds)


class Evaluator:
    """Mean return over ``evaluate_episodes`` (the last evaluation: ``evaluate_episodes_final`` when set)
    greedy episodes on ``env``, the evaluation copy of the task; episode ``i`` of evaluation ``k`` is seeded
    ``episode_seed(seed, 1, k, i)``, so a resumed run evaluates the same episodes.

    An agent with ``act_batch`` plays them all at once in a gymnasium vector env (one batched forward per
    step instead of one per episode and step); with ``vlog=true`` the first episode is filmed (videos/).
    """

    def __init__(self, config: Any, env: Any, spec: Any):
        self.config = config
        self.seed = int(config.seed)
        self.env = env
        self.vlog = bool(config.get("vlog"))
        self._channels = spec.obs_shape[0] // int(spec.info.get("frame_stack") or 1)
        if self.vlog and len(spec.obs_shape) != 3:  # vector observations: let the env draw itself
            try:
                rendering = instantiate(config.Env, {**offer(config.Env, config.env, seed=self.seed,
                                                             evaluation=True), "render_mode": "rgb_array"},
                                        label="Env")
            except UserError:
                raise UserError(f"vlog=true: {spec.suite} task {spec.task} has no image observations "
                                "and its Env takes no render_mode; use pixels (env.pixels=true) or vlog=false")\
                    from None
            self.env.close()
            self.env = rendering
        self.evaluations = 0
        self.run_dir: Path | None = None
        self.vector: gymnasium.vector.SyncVectorEnv | None = None  # built at the first batched evaluation

    def open(self, run_dir: Path, evaluations: int = 0) -> None:
        self.run_dir, self.evaluations = run_dir, int(evaluations)

    def evaluate(self, agent: Any, step: int) -> dict[str, float]:
        episodes = int(self.config.evaluate_episodes)
        if step >= int(self.config.train_steps) and self.config.get("evaluate_episodes_final") is not None:
            episodes = int(self.config.evaluate_episodes_final)  # a protocol's final score (Atari-100k: 100)
        seeds = [episode_seed(self.seed, 1, self.evaluations, i) for i in range(episodes)]
        agent.eval()
        if episodes > 1 and not self.vlog and hasattr(agent, "act_batch"):
            returns, lengths = self.batched(agent, step, seeds)
        else:
            returns, lengths = self.sequential(agent, step, seeds)
        agent.train()
        self.evaluations += 1
        score = float(np.mean(returns)) if returns else float("nan")
        return {"score": score, "score_std": float(np.std(returns)) if returns else float("nan"),
                "episodes": len(returns), "length": float(np.mean(lengths)) if lengths else float("nan")}

    def sequential(self, agent: Any, step: int, seeds: list[int]) -> tuple[list[float], list[int]]:
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
            if frames:
                write_mp4(self.run_dir / "videos" / f"step_{step}.mp4", frames)
            returns.append(total)
            lengths.append(length)
        return returns, lengths

    def batched(self, agent: Any, step: int, seeds: list[int]) -> tuple[list[float], list[int]]:
        """Each seed's episode in a vector env of at most ``_VECTOR_WIDTH`` copies, a chunk of seeds at a time.

        An env whose episode ended keeps stepping (autoreset), its rewards uncounted, until the chunk's last
        episode ends; a short last chunk is padded with extra seeds whose episodes are not counted.
        """
        width = min(len(seeds), _VECTOR_WIDTH)
        if self.vector is None or self.vector.num_envs != width:
            if self.vector is not None:
                self.vector.close()
            args = offer(self.config.Env, self.config.env, seed=self.seed, evaluation=True)
            make = lambda: instantiate(self.config.Env, args, label="Env")
            self.vector = gymnasium.vector.SyncVectorEnv([make] * width, copy=False)
        vector = self.vector
        returns: list[float] = []
        lengths: list[int] = []
        for first in range(0, len(seeds), width):
            chunk = seeds[first:first + width]
            padding = [episode_seed(self.seed, 2, self.evaluations, i) for i in range(width - len(chunk))]
            obs, _ = vector.reset(seed=chunk + padding)
            totals, steps = np.zeros(width), np.zeros(width, np.int64)
            running = np.ones(width, bool)
            while running[:len(chunk)].any():
                obs, reward, terminated, truncated, _ = vector.step(agent.act_batch(obs, step, eval_mode=True))
                totals += reward * running
                steps += running
                running &= ~(terminated | truncated)
            returns += totals[:len(chunk)].tolist()
            lengths += steps[:len(chunk)].tolist()
        return returns, lengths

    def _frame(self, obs: np.ndarray) -> np.ndarray:
        frame = as_frame(obs, self._channels)
        return frame if frame is not None else self.env.render()

    def close(self) -> None:
        self.env.close()
        if self.vector is not None:
            self.vector.close()
