"""What each driver reads from the config, declared once: the settings the drivers take.

A driver's settings are the task it feeds (``EnvSettings`` or ``DatasetSettings``) and the classes below.
``DRIVERS`` names, per driver, every settings class it reads: the entry's claim check (``ML.claims``) refuses a
key that none of the chosen driver's (nor the run's, nor the agent's) settings read. A driver's constructor
reads its settings from the config once and hands its collectors typed values (``EvaluationSettings`` lives in
``ML.envs.base``, beside ``evaluation_episodes`` that reads it).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from ML.envs.base import EnvSettings, EvaluationSettings
from ML.envs.datasets import DatasetSettings
from ML.settings import Settings

__all__ = ["DRIVERS", "AcrossSettings", "EvaluationSettings", "InteractiveSettings", "ReplaySettings",
           "SupervisedSettings", "TogetherSettings"]


@dataclasses.dataclass(frozen=True)
class ReplaySettings(Settings):
    """An off-policy driver's replay (``ML.replay``) and the batches it samples from it."""

    replay: Mapping[str, Any]   # save (keep replay.h5 after training), load (start from it), capacity
    batch_size: int             # transitions per sampled batch


@dataclasses.dataclass(frozen=True)
class InteractiveSettings(Settings):
    """How the interactive driver steps its environment and feeds the replay."""

    offline: bool       # learn from the run's saved replay.h5 only, no environment steps
    stream: bool        # keep no replay: learn from the newest transitions as they stream in
    env_process: bool   # step the training env in its own process while the agent updates


@dataclasses.dataclass(frozen=True)
class SupervisedSettings(Settings):
    """The supervised driver's batches (``ML.drivers.supervised``)."""

    batch_size: int     # samples per update (per rank under data-parallel training)


@dataclasses.dataclass(frozen=True)
class AcrossSettings(Settings):
    """Tasks of any kinds in one run (``ML.hyperparams.together``, ``ML.drivers.across``); each task's own
    settings live in its spec and are checked as that task's run would be."""

    together: list[Any] | None      # the task specs: a recipe name and its overrides each
    share: list[str] | None         # the parts built once and handed to every task's agent
    share_width: int                # with a shared Trunk: the features each task projects its inputs to


@dataclasses.dataclass(frozen=True)
class TogetherSettings(Settings):
    """Tasks of one kind trained by one agent (``env.task=[A,B]``, ``ML.drivers.together``)."""

    together_schedule: str  # whose episode next: "episodes" (in turn) or "proportional" (the fewest frames so far)


#: every settings class each driver reads (its name as ``ML.drivers.driver_kind`` gives it)
DRIVERS: dict[str, tuple[type[Settings], ...]] = {
    "interactive": (EnvSettings, EvaluationSettings, ReplaySettings, InteractiveSettings),
    "on-policy": (EnvSettings, EvaluationSettings),
    "together": (EnvSettings, EvaluationSettings, ReplaySettings, TogetherSettings),
    "supervised": (DatasetSettings, SupervisedSettings),
    "across": (AcrossSettings,),
}
