"""Published runs as data: where each run stands among the published runs of the agent it reproduces, and
those runs as a comparison entry (``<agent> (published)``) compared with the user's like any recipe.

``reference/atari100k_runs.csv``: the final score of every published run of 8 agents on the 26 Atari-100k
games (rliable's data; ``reference/README.md``). A cell is placed among an agent's runs only when
``published_agent`` says it reproduces that agent under the published protocol.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ML.benchmarking import references
from ML.benchmarking.normalize import normalize

SUFFIX = " (published)"
ATARI100K_STEPS = 100_000  # the published final scores are at 100k agent steps = 400k frames
ATARI100K_FRAMES = 400_000


def published_agent(suite: str, card: dict | None) -> str | None:
    """The published agent whose runs a cell is compared with, or None: the run's protocol card (run.json)
    matches that agent's published configuration in every environment and agent setting
    (``ML.published.compare``, recorded as ``protocol.reference``)."""
    reference = (card or {}).get("reference") or {}
    if suite != "Atari" or not reference.get("matches"):
        return None
    return reference.get("reference")


def label(agent: str) -> str:
    """The comparison entry's name: ``DrQ(eps) (published)``."""
    return agent + SUFFIX


def is_published(recipe: str) -> bool:
    """Whether a scores row is a published entry (these or DrQ-v2's own seeds), not a user's recipe."""
    return str(recipe).endswith(SUFFIX)


def atari100k_runs() -> pd.DataFrame:
    """Every published run's final score: ``agent, game, run, score`` and ``task`` (the game as env.game)."""
    rows = references.table("atari100k_runs")
    return rows.assign(task=rows["game"].map(references.game_key))


def der_curves() -> pd.DataFrame:
    """DER's published evaluation curves: ``agent, game, run, step, score`` (every 10k agent steps)."""
    return references.table("atari100k_der_curves")


def runs_of(agent: str, task: str) -> pd.DataFrame:
    """The published runs of one agent on one game (``task`` in any spelling ``game_key`` reads)."""
    rows = atari100k_runs()
    return rows[(rows["agent"] == agent) & (rows["task"] == references.game_key(task))]


def percentile(score: float, published: np.ndarray) -> float:
    """The percentile of ``score`` among ``published`` (ties count half): 100 × P(score > a published run),
    the Mann-Whitney statistic of one run against them, as the probability of improvement counts it."""
    published = np.asarray(published, dtype=float)
    return float(100 * ((published < score).sum() + 0.5 * (published == score).sum()) / published.size)


def ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


PLACEMENT_COLUMNS = ["experiment", "recipe", "suite", "task", "seed", "score", "agent", "game", "published_runs",
                     "percentile", "sentence"]


def placements(finals: pd.DataFrame, card_of) -> pd.DataFrame:
    """One row per run that reproduces a published agent (``card_of(row)``: the run's protocol card): its
    final score's percentile among the published runs of that agent and game, and the sentence saying so
    ("RoadRunner 11,360: 58th percentile of 100 published DrQ(eps) runs")."""
    records = []
    for row in finals.itertuples(index=False):
        if is_published(row.recipe):
            continue
        agent = published_agent(row.suite, card_of(row))
        runs = runs_of(agent, row.task) if agent else None
        if runs is None or runs.empty:
            continue
        value, game = percentile(row.score, runs["score"].to_numpy()), str(runs["game"].iloc[0])
        sentence = f"{game} {row.score:,.0f}: {ordinal(round(value))} percentile of {len(runs)} published {agent} runs"
        records.append((row.experiment, row.recipe, row.suite, row.task, int(row.seed), float(row.score), agent,
                        game, len(runs), value, sentence))
    return pd.DataFrame.from_records(records, columns=PLACEMENT_COLUMNS)


def atari100k_rows(matching: dict[str, set[str]], experiment: str, columns: list[str]) -> pd.DataFrame:
    """The published runs as scores rows (``<agent> (published)``, one evaluation each at 100k steps =
    400k frames, human-normalized) for ``matching``: agent → the games a user's runs reproduce it on."""
    parts = []
    for agent, tasks in sorted(matching.items()):
        for task in sorted(tasks):
            runs = runs_of(agent, task)
            if runs.empty:
                continue
            parts.append(pd.DataFrame({
                "experiment": experiment, "recipe": label(agent), "suite": "Atari", "task": task,
                "seed": runs["run"].astype(int).to_numpy(), "step": ATARI100K_STEPS, "frame": float(ATARI100K_FRAMES),
                "time": float("nan"), "score": runs["score"].astype(float).to_numpy(),
                "normalized": normalize(runs["score"].to_numpy(float), "Atari", task)}))
    return pd.concat(parts, ignore_index=True)[columns] if parts else pd.DataFrame(columns=columns)
