"""Gymnasium's MuJoCo locomotion and control tasks: ``Env=MuJoCo env.task=Hopper-v5`` (suite ``mujoco``).

The same wrapper as classic control (``ML.envs.classic.Classic``: float32 observations, seeded resets),
under the suite name ``MuJoCo`` so its runs, scores and published references stay apart from classic
control's. A name without a version (``Hopper``) gets ``DEFAULT_VERSION``; run.json's env records the
version (``mujoco_version``: v5 by default; gymnasium 1.x also has v4, and v2/v3 need the retired
mujoco-py), because returns differ between versions. Frames for videos (``vlog=true``) are rendered
headless through EGL (``MUJOCO_GL=egl``).
"""

from __future__ import annotations

import os
from typing import Any

from ML.envs.classic import Classic
from ML.errors import UserError

TASKS = ("Hopper", "Walker2d", "HalfCheetah", "Ant", "Humanoid", "Swimmer", "InvertedPendulum",
         "InvertedDoublePendulum", "Reacher")
DEFAULT_VERSION = "v5"
VERSIONS = ("v4", "v5")


def task_id(task: str) -> str:
    """``Hopper`` / ``Hopper-v5`` → ``Hopper-v5``; anything outside the suite is a one-line error."""
    name, _, version = str(task).partition("-")
    version = version or DEFAULT_VERSION
    if name not in TASKS or version not in VERSIONS:
        raise UserError(f"unknown MuJoCo task {task!r}: pass env.task=<one of {', '.join(TASKS)}> with an optional "
                        f"version ({' or '.join(VERSIONS)}; default {DEFAULT_VERSION}), e.g. env.task=Hopper-v5")
    return f"{name}-{version}"


class MuJoCo(Classic):
    """A gymnasium MuJoCo task with its ``TaskSpec`` (suite ``MuJoCo``); arguments as ``Classic``'s."""

    def __init__(self, task: str = "Hopper-v5", seed: int = 0, evaluation: bool = False,
                 max_episode_steps: int | None = None, pixels: bool = False, **kwargs: Any):
        task = task_id(task)
        if kwargs.get("render_mode") is not None:
            os.environ.setdefault("MUJOCO_GL", "egl")  # headless: no display on a cluster node
        super().__init__(task, seed, evaluation, max_episode_steps, pixels, **kwargs)
        self.task_spec.suite = "MuJoCo"
        self.task_spec.info["mujoco_version"] = task.rpartition("-")[2]
