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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from ML import published
from ML.fileio import write_json
from ML.published import Published

TABLES = Path(__file__).resolve().parent / "reference"
BASELINE_EPISODES = 100


def game_key(name: str) -> str:
    """``ALE/MsPacman-v5``, ``ms_pacman``, ``MsPacmanNoFrameskip-v4`` → ``mspacman``."""
    name = name.split("/")[-1]
    name = re.sub(r"(NoFrameskip)?-v\d+$", "", name)
    return re.sub(r"[^a-z0-9]", "", name.lower())


@functools.cache
def table(name: str) -> pd.DataFrame:
    """One of the shipped tables: ``atari_human_random``, ``atari100k_published``, ``dmc_drqv2_published``,
    ``dmc_drqv2_curves``, ``mujoco_tianshou_runs``, ``dmc_states_sac_runs`` (see ``reference/README.md`` for
    their sources and conventions)."""
    return pd.read_csv(TABLES / f"{name}.csv")


def atari_human_random(game: str) -> tuple[float, float] | None:
    """(random, human) scores of an Atari game, or None when the table lacks it."""
    rows = table("atari_human_random")
    match = rows[rows["game"].map(game_key) == game_key(game)]
    if match.empty:
        return None
    return float(match["random"].iloc[0]), float(match["human"].iloc[0])


# Video Pinball's random score: the shipped table's (DQN-Zoo) 16256.9, not the Agent57/MuZero table's 0.0.
VIDEO_PINBALL_NOTE = ("Video Pinball's random score is 16256.9 (DQN-Zoo's table, used here); the Agent57/MuZero "
                      "table's 0.0 would change its human-normalized score about 12-fold (not an Atari-100k game)")
DRQV2_SOURCE = "facebookresearch/drqv2 curves/ (MIT)"
DRQV2_LABEL = "DrQ-v2 (published)"  # the comparison entry made of DrQ-v2's own seeds


@dataclass(frozen=True)
class ReferenceProtocol:
    """A published result and the configurations it was measured with (``ML.published``: environment and
    agent settings as run.json's protocol card writes them): a run is compared with it only when it is one of
    them, setting for setting."""

    name: str
    suite: str
    published: tuple[Published, ...]
    checkpoints: tuple[int, ...]  # env frames at which the reference reports scores

    def mismatches(self, card: dict[str, Any] | None) -> list[str]:
        """Every difference from the nearest published configuration, as ``field value (published: value)``
        after its name; empty when the run is one of them."""
        nearest = min(self.published, key=lambda p: len(p.differences(card)))
        return [f"{nearest.name}: {d}" for d in nearest.differences(card)]

    def matched(self, card: dict[str, Any] | None) -> str | None:
        """The published configuration the run is (its name), or None."""
        return next((p.name for p in self.published if not p.differences(card)), None)


DMC_REFERENCE = ReferenceProtocol(
    f"DrQ-v2 published ({DRQV2_SOURCE}; pixels 84x84, action repeat 2, frame stack 3, 10 evaluation episodes, "
    "DrQ-v2's agent, vs env frames)", "DMC", (published.DRQV2,), (100_000, 500_000, 1_000_000))
ATARI100K_REFERENCE = ReferenceProtocol(
    "Atari-100k published aggregates (rliable, Apache-2.0; 26 games, 100k agent steps = 400k frames, no sticky "
    "actions, minimal action set, life loss terminal, dopamine's 0-29 no-op steps, 100 final evaluation "
    "episodes on 100 envs; drawn beside runs that are one of the published agents as dopamine runs it: "
    f"{', '.join(p.name for p in published.PUBLISHED if p.suite == 'Atari')})", "Atari",
    tuple(p for p in published.PUBLISHED if p.suite == "Atari"), (400_000,))
REFERENCES = {ref.suite: ref for ref in (DMC_REFERENCE, ATARI100K_REFERENCE)}
# kept for the figure labels
DMC_PROTOCOL = DMC_REFERENCE.name
ATARI100K_PROTOCOL = ATARI100K_REFERENCE.name


def dmc_published() -> pd.DataFrame:
    """DrQ-v2's published mean return per DMC task at 100k/500k/1M frames: ``task, frames, frame_measured,
    mean_return, seeds, source`` (``frame_measured`` 980000 where a curve ends there)."""
    return table("dmc_drqv2_published")


def drqv2_curves() -> pd.DataFrame:
    """DrQ-v2's per-seed evaluation curves: ``agent, task, seed, frame, episode_reward, hour``."""
    return table("dmc_drqv2_curves")


def checkpoint_label(frames: int, measured: int | None = None) -> str:
    """``100k``, ``1M``; ``1M (980k)`` when the value was measured at another frame."""
    def short(n: int) -> str:
        return f"{n / 1e6:g}M" if n >= 1_000_000 else f"{n / 1e3:g}k"
    return short(frames) + (f" ({short(measured)})" if measured and measured != frames else "")


def atari100k_published() -> pd.DataFrame:
    """Published Atari-100k aggregates: ``algorithm, hns_mean, hns_median, source``."""
    return table("atari100k_published")


def atari100k_games() -> set[str]:
    rows = table("atari_human_random")
    return set(rows.loc[rows["atari100k"] == 1, "game"].map(game_key))


# Published per-seed runs drawn beside matching runs of ours (``ML.benchmarking.scores.published_rows``).
TIANSHOU_SOURCE = "thu-ml/tianshou examples/mujoco/benchmark (MIT)"
# The published runs' agents as the card records ours (``ML.published.agent_card``): a run gets their runs
# beside it only when it is that agent with those settings (the recipes sac_mujoco and ppo_mujoco, and sac on
# the pytorch_sac protocol, are these; their headers cite the sources).
_STATES = {"observation": "states", "action_repeat": 1, "eval_episodes": 10}
_SAC = {"agent": "SACAgent", "agent.gamma": 0.99, "agent.tau": 0.005, "agent.update_every": 1,
        "agent.updates_per_step": 1, "agent.depth": 2, "optimizer": "Adam()", "replay": "uniform"}
TIANSHOU_SAC = Published("Tianshou SAC", "MuJoCo", "thu-ml/tianshou examples/mujoco/mujoco_sac.py (MIT)", {
    **_STATES, **_SAC, "agent.learn_start": 10_000, "agent.hidden_dim": 256, "agent.auto_entropy": False,
    "agent.ent_coef": 0.2, "agent.target_every": 1, "lr": 0.001, "batch_size": 256,
})
TIANSHOU_PPO = Published("Tianshou PPO", "MuJoCo", "thu-ml/tianshou examples/mujoco/mujoco_ppo.py (MIT)", {
    **_STATES, "agent": "PPOAgent", "agent.num_envs": 64, "agent.n_steps": 32, "agent.n_epochs": 10,
    "agent.gamma": 0.99, "agent.gae_lambda": 0.95, "agent.clip_range": 0.2, "agent.value_clip": 0.0,
    "agent.anneal_lr": True, "agent.anneal_clip": False, "agent.norm_adv": False, "agent.ent_coef": 0.0,
    "agent.vf_coef": 0.25, "agent.max_grad_norm": 0.5, "agent.hidden_dim": 64, "agent.depth": 2,
    "agent.activation": "Tanh", "agent.log_std_init": -0.5, "agent.policy_gain": 0.0141421356,
    "agent.value_gain": 1.41421356, "agent.obs_norm": True, "agent.reward_norm": False, "agent.return_norm": True,
    "agent.recompute_adv": True, "optimizer": "Adam()", "lr": 0.0003, "batch_size": 64,
})
PYTORCH_SAC = Published("pytorch_sac", "DMC", "denisyarats/pytorch_sac config/agent/sac.yaml (MIT)", {
    **_STATES, **_SAC, "agent.learn_start": 5000, "agent.hidden_dim": 1024, "agent.auto_entropy": True,
    "agent.ent_coef": 0.1, "agent.alpha_lr": 0.0, "agent.target_every": 2, "lr": 0.0001, "batch_size": 1024,
})
# the algorithm each published agent's runs are filed under (``tianshou_runs``; pytorch_sac's are SAC's)
ALGORITHM = {TIANSHOU_SAC.name: "sac", TIANSHOU_PPO.name: "ppo", PYTORCH_SAC.name: "sac"}
MUJOCO_REFERENCE = ReferenceProtocol(
    f"Tianshou published ({TIANSHOU_SOURCE}; gym v3 — v2 for InvertedPendulum, InvertedDoublePendulum, Reacher — "
    "with mujoco-py, where ours are gymnasium v5 on mujoco 3: returns differ between versions; states, "
    "10 deterministic evaluation episodes, Tianshou's SAC or PPO settings, vs env steps)", "MuJoCo",
    (TIANSHOU_SAC, TIANSHOU_PPO), (1_000_000, 3_000_000))
SAC_DMC_SOURCE = "denisyarats/pytorch_sac data/sac.csv (MIT)"
SAC_DMC_LABEL = "SAC (pytorch_sac, published)"
SAC_DMC_REFERENCE = ReferenceProtocol(
    f"pytorch_sac published ({SAC_DMC_SOURCE}; states, action repeat 1, 10 evaluation episodes, its SAC "
    "settings, vs env steps)", "DMC", (PYTORCH_SAC,), (500_000, 1_000_000))


def _base(task: str) -> str:
    return str(task).partition("-")[0]


def tianshou_runs(agent: str, task: str) -> pd.DataFrame:
    """Tianshou's published evaluations of ``agent`` (``sac``, ``ppo``...) on a MuJoCo task (any version
    of its name: ``Hopper-v5`` finds ``Hopper-v3``): ``agent, env, seed, step, score`` (``env``: theirs;
    ``step``: env steps, its random start steps counted as ours are: ``TIANSHOU_UNCOUNTED_STEPS``)."""
    rows = table("mujoco_tianshou_runs")
    rows = rows[(rows["agent"] == agent) & (rows["env"].map(_base) == _base(task))]
    return rows.assign(step=rows["step"] + TIANSHOU_UNCOUNTED_STEPS.get(agent, 0))


# Tianshou's off-policy trainer counts env steps after its initial uniformly random collect (mujoco_sac.py's
# --start-timesteps 10000), so its step s is env step s + 10,000; its on-policy trainer counts every step.
TIANSHOU_UNCOUNTED_STEPS = {"sac": 10_000}


def tianshou_label(agent: str, env: str) -> str:
    """The comparison entry's name, with the published version on it (never pooled with ours silently)."""
    return f"Tianshou {agent.upper()} (published, gym {env.rpartition('-')[2]})"


def mujoco_bounds(task: str) -> tuple[float, float] | None:
    """MuJoCo's normalization: 0 = Tianshou SAC's untrained policy (mean of its first evaluations, after its
    random start steps), 1 = Tianshou SAC at 1M env steps (mean over seeds of each seed's first evaluation at
    or after 1M); gym v3/v2."""
    rows = tianshou_runs("sac", task)
    if rows.empty:
        return None
    start = rows[rows["step"] == rows["step"].min()]["score"].mean()
    late = rows[rows["step"] >= 1_000_000].sort_values("step").groupby("seed")["score"].first().mean()
    return float(start), float(late)


def sac_dmc_runs(task: str) -> pd.DataFrame:
    """pytorch_sac's published evaluations of SAC from states on a DMC task: ``agent, task, seed, step, score``
    (steps are env steps: action repeat 1)."""
    rows = table("dmc_states_sac_runs")
    return rows[rows["task"] == task]


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
