"""N replays sampled as one: the experience of ``env.num_envs=N`` games, one ``Replay`` (and one replay.h5
file) per game, so each keeps its episodes whole and rebuilds its own stacks and n-step returns."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from ML.replay import Replay


def stream_path(path: Path | None, i: int) -> Path | None:
    """Game 0's replay is ``replay.h5`` (what one game writes); game ``i`` > 0's is ``replay.env<i>.h5``."""
    return path if path is None or i == 0 else path.with_name(f"{path.stem}.env{i}{path.suffix}")


class Streams:
    """``Replay``-like over ``N`` replays: ``sample`` is uniform over all their transitions (each transition's
    stream drawn in proportion to its size, then each stream sampled for its share); with ``equal=True`` each
    non-empty stream gives an equal share of every batch (tasks trained together: ``ML.drivers.together``)."""

    def __init__(self, num: int, path: Path | None, *args: Any, seed: int = 0,
                 states: list[dict[str, Any]] | None = None, equal: bool = False, **kwargs: Any):
        self.equal = bool(equal)
        self.streams = [Replay(stream_path(path, i), *args, seed=seed + i,  # type: ignore[misc]
                               state=None if states is None else states[i], **kwargs) for i in range(num)]
        self.rng = np.random.default_rng([seed, num])
        if states is not None and "streams_rng" in states[0]:
            self.rng.bit_generator.state = states[0]["streams_rng"]

    def __len__(self) -> int:
        return sum(len(s) for s in self.streams)

    def __getitem__(self, i: int) -> Replay:
        return self.streams[i]

    @property
    def frames(self) -> int:
        return sum(s.frames for s in self.streams)

    def start(self, obs: Any) -> None:
        """Every game's first observation (``obs[i]`` is game ``i``'s), after the games were reset."""
        for replay, first in zip(self.streams, obs, strict=True):
            replay.start(first)

    def add_round(self, step: Any) -> None:
        """One step of all N games (an ``ML.envs.atari_vector.Round``): each game's transition, or the first
        observation of its new episode where it ``restarted``; nothing for a ``skipped`` game."""
        for i, replay in enumerate(self.streams):
            if step.restarted[i]:
                replay.start(step.obs[i])
            elif not step.skipped[i]:
                replay.add(step.actions[i], step.reward[i], step.obs[i], step.terminated[i], step.truncated[i])

    def sample(self, batch_size: int, *args: Any, **kwargs: Any) -> dict[str, torch.Tensor]:
        sizes = np.array([len(s) for s in self.streams], np.float64)
        if self.equal:
            live = np.flatnonzero(sizes)
            counts = np.zeros(len(sizes), np.int64)
            counts[live] = int(batch_size) // len(live)
            counts[self.rng.choice(live, int(batch_size) - int(counts.sum()), replace=False)] += 1
        else:
            counts = self.rng.multinomial(int(batch_size), sizes / sizes.sum())
        parts = [s.sample(int(c), *args, **kwargs) for s, c in zip(self.streams, counts, strict=True) if c]
        return {k: torch.cat([p[k] for p in parts]) for k in parts[0]}

    def state(self) -> list[dict[str, Any]]:
        states = [s.state() for s in self.streams]
        states[0] = {**states[0], "streams_rng": self.rng.bit_generator.state}
        return states

    def close(self, keep: bool = True) -> None:
        for s in self.streams:
            s.close(keep=keep)
