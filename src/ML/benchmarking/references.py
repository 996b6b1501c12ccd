"""Reference scores: the Atari human/random table, published curves, and measured random baselines.

The tables ship with the package (``ML/benchmarking/reference/*.csv``). The classic-control random score
is measured by the random agent and cached per task, shared by every experiment::

    python -m ML.benchmarking.cli baseline --task CartPole-v1 --out results/baselines/Classic/CartPole-v1.json
"""

from __future__ import annotations

import functools
import json
import math
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd

from ML.fileio import write_json

TABLES = Path(__file__).resolve().parent / "reference"
BASELINE_EPISODES = 100


def game_key(name: str) -> str:
    """``ALE/MsPacman-v5``, ``ms_pacman``, ``MsPacmanNoFrameskip-v4`` → ``mspacman``."""
    name = name.split("/")[-1]
    name = re.sub(r"(NoFrameskip)?-v\d+$", "", name)
    return re.sub(r"[^a-z0-9]", "", name.lower())


@functools.cache
def table(name: str) -> pd.DataFrame:
    """One of the shipped tables: ``atari_human_random``, ``atari100k_published``, ``dmc_drqv2_published``."""
    return pd.read_csv(TABLES / f"{name}.csv")


def atari_human_random(game: str) -> tuple[float, float] | None:
    """(random, human) scores of an Atari game, or None when the table lacks it."""
    rows = table("atari_human_random")
    match = rows[rows["game"].map(game_key) == game_key(game)]
    if match.empty:
        return None
    return float(match["random"].iloc[0]), float(match["human"].iloc[0])


DMC_PROTOCOL = "DrQ-v2 published (pixels, action repeat 2, mean of 10 seeds, vs env frames)"
DMC_PROTOCOL_KEY = "pixels, action repeat 2"  # ML.benchmarking.cells.protocol of a matching DMC run
ATARI100K_PROTOCOL = "Atari-100k published aggregates (26 games, 100k agent steps, human-normalized, rliable)"


def dmc_published() -> pd.DataFrame:
    """DrQ-v2's published mean return per DMC task at 100k/500k/1M frames: ``task, frames, mean_return``."""
    return table("dmc_drqv2_published")


def atari100k_published() -> pd.DataFrame:
    """Published Atari-100k aggregates: ``algorithm, hns_mean, hns_median, source``."""
    return table("atari100k_published")


def atari100k_games() -> set[str]:
    rows = table("atari_human_random")
    return set(rows.loc[rows["atari100k"] == 1, "game"].map(game_key))


def baseline_path(baselines: str | Path, task: str, suite: str = "Classic") -> Path:
    return Path(baselines) / suite / f"{task}.json"


def random_baseline(baselines: str | Path | None, task: str, suite: str = "Classic") -> float | None:
    """The cached random-agent score of a task, or None when it has not been measured."""
    if baselines is None:
        return None
    try:
        data = json.loads(baseline_path(baselines, task, suite).read_text())
        value = float(data["random"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return value if math.isfinite(value) else None


def measure_random_baseline(task: str, out: str | Path, episodes: int = BASELINE_EPISODES, seed: int = 0) -> float:
    """Run the random agent on a classic-control task (``train_steps=0``: one evaluation at step 0) and
    write ``{"task", "random", "episodes", ...}`` to ``out``. Returns the score."""
    with tempfile.TemporaryDirectory(prefix="ml-baseline-") as tmp:
        argv = ["task=random", "Env=Classic", f"env.task={task}", "train_steps=0",
                f"evaluate_episodes={episodes}", f"seed={seed}", f"results={tmp}", "experiment=baseline",
                "threads=1", "progress=false"]
        command = [sys.executable, "-m", "ML", *argv]
        proc = subprocess.run(command, capture_output=True, text=True, cwd=tmp,
                              env={**os.environ, "PYTHONUNBUFFERED": "1"})
        if proc.returncode != 0:
            detail = (proc.stderr.strip() or proc.stdout.strip()).splitlines()
            raise RuntimeError(f"random baseline for {task} failed: ML {' '.join(argv)}: "
                               f"{detail[-1] if detail else f'exit code {proc.returncode}'}")
        evals = sorted(Path(tmp).glob("**/eval.csv"))
        if not evals:
            raise RuntimeError(f"random baseline for {task}: ML wrote no eval.csv under {tmp}")
        frame = pd.read_csv(evals[0])
        score = float(frame["score"].iloc[-1])
    write_json(out, {"suite": "Classic", "task": task, "random": score, "episodes": episodes, "seed": seed,
                     "command": "ML " + " ".join(a for a in argv if not a.startswith("results="))})
    return score
