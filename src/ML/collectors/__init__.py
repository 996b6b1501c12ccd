"""Collectors: small parts that gather an agent's experience, composed by a driver (``ML.drivers``).

A driver is the run loop's one partner (``ML.drivers.Driver``); a collector does one job inside it —
on-policy rollouts of N envs (``rollout.Rollouts``) or evaluation episodes (``evaluation.Evaluator``) —
so a driver is a few lines that put collectors together. Every collector resumes exactly: ``state()`` is
what a checkpoint keeps, ``open(state)`` continues from it.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np

from ML.agents.base import Agent
from ML.envs.base import TaskSpec


def episode_seed(*key: int) -> int:
    """A seed per episode, so an episode replays exactly after a resume at its boundary."""
    return int(np.random.SeedSequence([abs(int(k)) for k in key]).generate_state(1)[0])


@runtime_checkable
class Collector(Protocol):
    """What a driver calls on a collector of training experience. Arguments before ``/`` are positional."""

    spec: TaskSpec          # the task the experience comes from
    frames_per_step: int    # env frames one loop step consumes

    @property
    def episode(self) -> int:
        """Training episodes completed."""

    def open(self, state: dict[str, Any] | None = None, /) -> None:
        """Start the environments; ``state`` (from ``state()``) continues a checkpointed run exactly."""

    def collect(self, agent: Agent, step: int, /) -> tuple[Any, dict[str, float]]:
        """One loop step of collection: the experience now ready for ``agent.update`` (or None) and
        metrics for train.csv (an episode's return when one ended)."""

    def state(self) -> dict[str, Any]:
        """What a checkpoint needs to continue exactly; changes nothing."""

    def close(self) -> None:
        """Release the environments."""
