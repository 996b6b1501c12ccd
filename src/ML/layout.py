"""The results tree's layout, written once: where a run lives and where the pipeline keeps its cell's status.

    <root>/<experiment>/runs/<recipe>/<suite>/<task>/<seed>/        a run (run.json, eval.csv, agent.pt, ...)
    <root>/<experiment>/cells/<recipe>/<suite>/<task>/<seed>.json   the pipeline's status of that cell

The engine writes runs here (``ML.run``), the pipeline finds and names them (``ML.benchmarking``), the
workflow's rules declare them (``workflow/rules/common.smk``) and the tests read them. The words are the
glossary's (docs/glossary.md): ``recipe`` the recipe's name, ``suite`` the environment kind (``Classic``,
``DMC``), ``task`` the task within it, ``seed`` an integer.
"""

from __future__ import annotations

from pathlib import Path

RUNS, CELLS = "runs", "cells"
LEVELS = ("recipe", "suite", "task", "seed")  # the levels under runs/ and cells/, in order
RUN_GLOB = f"{RUNS}/*/*/*/*/run.json"  # every run.json under an experiment's folder
STATUS_GLOB = f"{CELLS}/*/*/*/*.json"  # every cell status under an experiment's folder


def run_dir(root: str | Path, experiment: str, recipe: str, suite: str, task: str, seed: int | str) -> Path:
    """The run directory of one recipe × suite/task × seed (``seed`` may be a ``{seed}`` pattern)."""
    return Path(root) / experiment / RUNS / recipe / suite / task / str(seed)


def status_path(root: str | Path, experiment: str, recipe: str, suite: str, task: str, seed: int | str) -> Path:
    """The pipeline's status file of the same cell (written whether the run succeeded or not)."""
    return Path(root) / experiment / CELLS / recipe / suite / task / f"{seed}.json"


def run_of_status(status: str | Path) -> Path:
    """The run directory that a cell status file stands for."""
    status = Path(status)
    parts = status.parts
    i = len(parts) - 1 - parts[::-1].index(CELLS)
    return Path(*parts[:i], RUNS, *parts[i + 1:-1], status.stem)


def identity_of(run: str | Path) -> dict[str, str]:
    """``experiment``, ``recipe``, ``suite``, ``task``, ``seed`` read from a run directory's path; ``{}`` when
    the path is not in this layout (a ``run_dir=`` given on the command line)."""
    parts = Path(run).parts
    if len(parts) < 6 or parts[-5] != RUNS:
        return {}
    return dict(zip(("experiment", *LEVELS), (parts[-6], *parts[-4:]), strict=True))
