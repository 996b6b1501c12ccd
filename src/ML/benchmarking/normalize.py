"""One scale for every suite: ``normalized = (score − low) / (high − low)``, 0 = baseline, 1 = target.

- Atari: human-normalized, low/high = random/human scores from the shipped table.
- DMC: ``score / 1000``.
- Classic: low = the random agent's measured score, high = the task's ``reward_threshold`` (run.json env).
- Classify: chance-normalized accuracy, low = 1/K, high = 1 (K = run.json env.num_classes).
- Generate: the GAN score is already 0 (noise) to 1 (the test set's feature statistics): low 0, high 1.
- MuJoCo: low/high = Tianshou SAC's published mean return untrained / at 1M steps (gym v3/v2: a scale, not a
  claim that the versions' returns agree).

A suite or task without a reference gives NaN and a ReferenceWarning naming it, never 0 and never dropped.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ML.benchmarking import references


class ReferenceWarning(UserWarning):
    """A score could not be normalized (no reference for its suite or task)."""


class MissingReference(LookupError):
    pass


def _number(value: Any) -> float | None:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def bounds(suite: str, task: str, env: Mapping[str, Any] | None = None,
           baselines: str | Path | None = None, random_score: float | None = None) -> tuple[float, float]:
    """(low, high) of the normalization, or MissingReference saying what is missing and where it would come from.

    ``env`` is run.json's ``env`` (task metadata); ``random_score`` overrides the cached baseline (Classic)."""
    env = env or {}
    if suite == "Atari":
        ref = references.atari_human_random(task)
        if ref is None:
            raise MissingReference(f"no human/random reference for Atari game {task!r} "
                                   f"(not in {references.TABLES / 'atari_human_random.csv'})")
        return ref
    if suite == "DMC":
        return 0.0, 1000.0
    if suite == "MuJoCo":
        ref = references.mujoco_bounds(task)
        if ref is None:
            raise MissingReference(f"no Tianshou SAC runs for MuJoCo task {task!r} "
                                   f"(not in {references.TABLES / 'mujoco_tianshou_runs.csv'})")
        return ref
    if suite == "Generate":
        return 0.0, 1.0
    if suite == "Classify":
        k = _number(env.get("num_classes"))
        if k is None or k < 2:
            raise MissingReference(f"Classify task {task!r}: run.json env has no num_classes ≥ 2 to set chance 1/K")
        return 1.0 / k, 1.0
    if suite == "Classic":
        target = _number(env.get("reward_threshold"))
        if target is None:
            raise MissingReference(f"Classic task {task!r} has no reward_threshold (gymnasium spec) in run.json env")
        low = random_score if random_score is not None else references.random_baseline(baselines, task, "Classic")
        if low is None:
            where = references.baseline_path(baselines, task) if baselines else "results/baselines/Classic/"
            raise MissingReference(f"no random baseline for Classic task {task!r} ({where} missing; "
                                   "the pipeline's baseline rule measures it)")
        return float(low), target
    raise MissingReference(f"no normalization reference for suite {suite!r} (task {task!r}); "
                           "known suites: Atari, DMC, Classic, Classify, Generate, MuJoCo")


def normalize(score: Any, suite: str, task: str, env: Mapping[str, Any] | None = None,
              baselines: str | Path | None = None, random_score: float | None = None) -> Any:
    """Normalized score(s) (float or array like ``score``); NaN and a ReferenceWarning when no reference."""
    values = np.asarray(score, dtype=float)
    try:
        low, high = bounds(suite, task, env, baselines, random_score)
        if high == low:
            raise MissingReference(f"{suite} task {task!r}: reference low = high = {low}, cannot normalize")
    except MissingReference as e:
        warnings.warn(f"{e}: normalized left NaN", ReferenceWarning, stacklevel=2)
        out = np.full_like(values, np.nan)
    else:
        out = (values - low) / (high - low)
    return float(out) if out.ndim == 0 else out
