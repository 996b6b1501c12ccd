"""What each driver reads from the config, declared once: the settings the drivers take.

A driver's settings are the task it feeds (``EnvSettings`` or ``DatasetSettings``) and the classes below.
``DRIVERS`` names, per driver, every settings class it reads: the entry's claim check (``ML.claims``) refuses a
key that none of the chosen driver's (nor the run's, nor the agent's) settings read. The interactive, on-policy
and together drivers still receive the whole config; these classes are what they switch to.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from ML.envs.base import EnvSettings
from ML.envs.datasets import DatasetSettings
from ML.settings import Settings

__all__ = ["DRIVERS", "AcrossSettings", "EvaluationSettings", "InteractiveSettings", "ReplaySettings",
           "SupervisedSettings", "TogetherSettings"]


@dataclasses.dataclass(frozen=True)
class EvaluationSettings(Settings):
    """An RL driver's evaluations (``ML.collectors.evaluation``, ``ML.envs.base.evaluation_episodes``)."""

    evaluate_episodes: int              # episodes per evaluation
    evaluate_episodes_final: int | None  # episodes of the last evaluation at the protocol's budget (null: as above)
    evaluate_envs: int                  # episodes played at once, one env each
    vlog: bool                          # save a video of each evaluation's first episode (videos/)


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
