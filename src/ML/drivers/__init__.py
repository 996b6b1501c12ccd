"""Drivers feed an agent its experience: ``Interactive`` (an environment and a replay), ``OnPolicy`` (fresh
rollouts of N environments, for agents with ``on_policy = True``) or ``Supervised`` (a dataset), each a
``composed.Composed`` of a collector and an evaluator (``ML.collectors``).

The run loop (``ML.run``) talks to a driver only through ``Driver``; a driver talks to its agent only
through ``ML.agents.base.Agent`` (and ``DatasetAgent`` for evaluation on a dataset).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from ML.agents.base import Agent
from ML.envs.base import TaskSpec


@runtime_checkable
class Driver(Protocol):
    """What the run loop calls on its driver. Arguments before ``/`` are passed by position."""

    spec: TaskSpec          # the task: shapes for the agent, identity for the run directory, run.json's env
    frames_per_step: int    # frames (RL) or samples (datasets) one step consumes: eval.csv's frame counter

    @property
    def episode(self) -> int:
        """Episodes (RL) or epochs (datasets) completed."""

    def open(self, run_dir: Path, resume: bool, state: dict[str, Any] | None = None, /) -> None:
        """Start in ``run_dir``; ``state`` (from ``state()``) continues a checkpointed run exactly."""

    def step(self, agent: Agent, step: int, /) -> dict[str, float]:
        """One training step of ``agent``; its metrics for train.csv."""

    def evaluate(self, agent: Agent, step: int, /, progress: Callable[[int, int], None] | None = None
                 ) -> dict[str, float]:
        """One evaluation: an eval.csv row's values, ``score`` among them. ``progress(done, total)`` as it goes
        (episodes). It changes no state until its work is done, which runs in ``ML.stops.abortable()``: a stop
        signal ends it at once, and the loop evaluates again on resume."""

    def before_checkpoint(self) -> None:
        """Settle the driver for a checkpoint (e.g. finish work in flight), so that ``state()``, a pure read,
        is what a resume continues from; ``run`` calls it right before gathering a checkpoint's state."""

    def state(self) -> dict[str, Any]:
        """What a checkpoint needs to continue exactly (after ``before_checkpoint``); changes nothing."""

    def close(self, keep: bool, /) -> None:
        """Release the environment or workers; ``keep``: keep the replay on disk."""


def on_policy(config: Any) -> bool:
    """Whether the config's Agent learns from fresh rollouts (its class says ``on_policy = True``)."""
    from ML.hyperparams.paths import resolve

    return config.get("Agent") is not None and bool(getattr(resolve(config.Agent, "Agent"), "on_policy", False))


def driver_kind(config: Any) -> str | None:
    """The driver a config trains with, without building it: ``across`` with ``together:`` (each task its own
    driver), ``together`` when ``env.task`` is a list,
    ``on-policy`` for an on-policy agent, else ``interactive`` when ``Env`` is set; ``supervised`` when
    ``Dataset`` is; None when neither is."""
    if config.get("together"):
        return "across"
    if config.get("Env") is not None:
        if isinstance((config.get("env") or {}).get("task"), (list, tuple)):  # several tasks, one agent
            return "together"
        return "on-policy" if on_policy(config) else "interactive"
    return "supervised" if config.get("Dataset") is not None else None


def make_driver(config: Any) -> Driver:
    """Interactive (OnPolicy for an on-policy agent; Together when ``env.task`` is a list) when ``Env`` is set,
    Supervised when ``Dataset`` is; one must be. ``Across`` (each task's own of these) with ``together:``."""
    from ML.errors import UserError

    kind = driver_kind(config)
    if kind == "across":  # tasks of any kinds, each its own driver (docs/together.md)
        from ML.drivers.across import Across

        return Across(config, make_driver)
    if kind == "together":
        from ML.drivers.together import Together

        return Together(config)
    if kind == "on-policy":
        from ML.drivers.onpolicy import OnPolicy

        return OnPolicy(config)
    if kind == "interactive":
        from ML.drivers.interactive import Interactive

        return Interactive(config)
    if kind == "supervised":
        from ML.drivers.supervised import Supervised

        return Supervised(config)
    raise UserError("nothing to train on: set Env=... (e.g. Env=Classic env.task=CartPole-v1) or "
                    "Dataset=... (e.g. Dataset=Digits), or pick a recipe with task=...")
