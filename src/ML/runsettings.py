"""The run's own settings (``RunSettings``), in a module of their own so that the parts below the run loop
(drivers, collectors, agents, ``ML.envs.memmap``) can take the seed and results folder as typed values:
``ML.run`` imports those parts, so they cannot import it."""

from __future__ import annotations

import dataclasses

from ML.settings import Settings

__all__ = ["RunSettings"]


@dataclasses.dataclass(frozen=True)
class RunSettings(Settings):
    """The run itself: where it writes, how long it trains, when it evaluates, logs and checkpoints, and how
    it starts (fresh, resumed, from another checkpoint)."""

    task: str | None            # the recipe's name: the run directory's <recipe>
    experiment: str             # groups runs: results/<experiment>/runs/...
    seed: int                   # seeds torch, numpy and the environment
    results: str                # root folder of run directories
    run_dir: str | None         # explicit run directory (overrides the layout)
    train_steps: int            # agent updates (datasets) or environment steps (RL)
    evaluate_per_steps: int     # evaluate at step 0, every this many steps and at the end (0: at the end)
    log_per_steps: int          # a train.csv row every this many steps
    save: bool                  # checkpoint agent.pt at the end
    save_per_steps: int | None  # and every this many steps (0/null: only at the end)
    load: bool | str            # true: this run's checkpoint; words: the nearest run; a path
    resume: bool                # the same command continues this run's unfinished checkpoint
    overwrite: bool             # replace a complete run (trained beside it, swapped in when complete)
    trust_code: bool            # load= may build code a checkpoint names outside ML/torch
    progress: bool | str        # progress bar: auto (when a terminal), true, false
    debug: bool                 # a one-line error also prints its traceback (ML.cli reads it from argv)
