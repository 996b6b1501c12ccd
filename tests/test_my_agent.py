"""examples/my_agent end to end: the user's agent (a class in their own file, named by their own recipe) trains
beside the built-in dqn through the real snakemake pipeline, and every table labels it by the recipe's name."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import yaml

from tests.conftest import REPO
from tests.test_pipeline import snakemake

EXAMPLE = REPO / "examples" / "my_agent"


def test_my_agent_trains_beside_dqn_through_the_pipeline(tmp_path: Path):
    work = tmp_path / "my_agent"
    shutil.copytree(EXAMPLE, work)
    config = yaml.safe_load((work / "config.yaml").read_text())
    # the shipped grid at a tiny budget: one seed, 300 steps, learning from step 100
    config.update(seeds=[0], stats={"reps": 100}, args=["train_steps=300", "evaluate_per_steps=150",
                                                        "evaluate_episodes=2", "agent.learn_start=100"])
    (work / "config.yaml").write_text(yaml.safe_dump(config))
    proc = snakemake(work, "--cores", "2")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    root = work / "results" / "my_agent"
    mine = json.loads((root / "runs/my_q/Classic/CartPole-v1/0/run.json").read_text())
    assert mine["status"] == "complete" and mine["config"]["Agent"] == "my_agent.QAgent"
    assert mine["env"]["agent"] == "QAgent (examples/my_agent)"  # describe() reached run.json
    assert json.loads((root / "runs/dqn/Classic/CartPole-v1/0/run.json").read_text())["status"] == "complete"
    eval_rows = pd.read_csv(root / "runs/my_q/Classic/CartPole-v1/0/eval.csv")
    assert list(eval_rows["step"]) == [0, 150, 300]
    assert "loss" in pd.read_csv(root / "runs/my_q/Classic/CartPole-v1/0/train.csv").columns  # update()'s losses

    assert set(pd.read_csv(root / "scores.csv")["recipe"]) == {"dqn", "my_q"}
    pairs = pd.read_csv(root / "comparisons.csv")[["x", "y"]].apply(frozenset, axis=1)
    assert frozenset({"dqn", "my_q"}) in set(pairs)
    summary = (root / "summary.md").read_text()
    assert "my_q" in summary and "(my_agent)" not in summary and "dqn (" not in summary
    assert (root / "report.html").is_file()
