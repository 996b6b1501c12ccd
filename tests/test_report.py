"""The full figure set, tables, verdicts, published references and summary from a synthetic results tree
(real run directories written here), through ``Plot`` (the implementation the pipeline's rules share)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ML import plot_cli
from ML.benchmarking import plots
from ML.runinfo import now

BIN = Path(sys.executable).parent
PNG = b"\x89PNG\r\n\x1a\n"


def provenance_protocols(root: Path) -> dict:
    return json.loads((root / "stats.json").read_text())["protocols"]


def write_run(root: Path, experiment: str, recipe: str, suite: str, task: str, seed: int, finals: float,
              env: dict, status: str = "complete", steps: int = 6) -> None:
    run_dir = root / experiment / "runs" / recipe / suite / task / str(seed)
    run_dir.mkdir(parents=True)
    step = np.arange(steps) * 1000
    score = np.linspace(0, finals, steps)
    pd.DataFrame({"step": step, "frame": step * 2, "episode": np.arange(steps), "time": step / 500.0,
                  "score": score}).to_csv(run_dir / "eval.csv", index=False)
    info = {"status": status, "experiment": experiment, "recipe": recipe, "suite": suite, "task": task,
            "seed": seed, "env": env, "protocol": env.get("card", {}), "heartbeat": now()}  # alive if running
    (run_dir / "run.json").write_text(json.dumps(info))


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    results = tmp_path / "results"
    dmc = {"pixels": False, "action_repeat": 2,  # states: the DrQ-v2 reference is pixels -> left out
           "card": {"observation": "states", "action_repeat": 2, "frame_stack": 1, "eval_episodes": 10}}
    atari = {"protocol": "atari100k", "card": {"sticky_actions": 0.0, "action_set": "minimal (6 actions)",
                                               "noop_max": 30, "terminal_on_life_loss": True,
                                               "max_episode_frames": 108000, "action_repeat": 4, "frame_stack": 4,
                                               "final_eval_episodes": 100, "frame_budget": 400000}}
    for seed in range(3):
        for task, level in (("cartpole_balance", 900.0), ("walker_walk", 500.0)):
            write_run(results, "X", "strong", "DMC", task, seed, level + 10 * seed, dmc)
            write_run(results, "X", "weak", "DMC", task, seed, level / 3 + 10 * seed, dmc)
        for game, level in (("pong", 10.0), ("breakout", 20.0)):
            write_run(results, "X", "strong", "Atari", game, seed, level + seed, atari)
            write_run(results, "X", "weak", "Atari", game, seed, level + 1.5 - seed, atari)
    write_run(results, "X", "weak", "DMC", "walker_walk", 3, 0.0, dmc, status="running")  # never counted
    # a cell the pipeline recorded as failed
    status = results / "X" / "cells" / "strong" / "DMC" / "walker_walk" / "3.json"
    status.parent.mkdir(parents=True)
    status.write_text(json.dumps({"status": "failed", "failures": 1, "problem": "ML exited with code 1: boom"}))
    return results


def test_plot_writes_the_full_figure_set_tables_and_summary(tree: Path):
    written = plot_cli.run(plot_cli.parse(["experiment=X", f"results={tree}", "reps=200", "baselines=false"]))
    root = tree / "X"
    assert sorted(p.name for p in written) == sorted(plots.figure_names(["Atari", "DMC"]))
    for name in plots.figure_files(["Atari", "DMC"]):
        data = (root / "plots" / name).read_bytes()
        assert data[:8] == PNG if name.endswith(".png") else b"<svg" in data[:500]

    pairs = pd.read_csv(root / "comparisons.csv")
    assert set(pairs.suite) == {"Atari", "DMC"}
    dmc = pairs[pairs.suite == "DMC"].iloc[0]
    # every strong DMC run beats every weak one: P = 1 (x = strong sorts after... either order)
    assert {dmc.x, dmc.y} == {"strong", "weak"}
    assert dmc.poi in (0.0, 1.0) and dmc.verdict in ("better", "worse")
    atari = pairs[pairs.suite == "Atari"].iloc[0]
    # Atari: strong {10,11,12} vs weak {11.5,10.5,9.5} etc.: overlapping -> inconclusive with a seeds estimate
    assert atari.verdict == "inconclusive" and atari.seeds_needed > 3
    assert "seeds per task would likely decide it" in atari.sentence

    final = pd.read_csv(root / "final_scores.csv")
    final = final[final["at"] == "final"].set_index(["recipe", "task"])
    # the last 10% of 5000 steps holds the last evaluation only: strong cartpole finals 900, 910, 920
    assert final.loc[("strong", "cartpole_balance"), "score_mean"] == pytest.approx(910.0)
    assert final.loc[("strong", "cartpole_balance"), "seeds"] == 3
    assert final.loc[("strong", "cartpole_balance"), "normalized_mean"] == pytest.approx(0.91)
    assert "| DMC | cartpole_balance |" in (root / "final_scores.md").read_text()

    cells = pd.read_csv(root / "cells.csv")
    assert sorted(cells.status.unique()) == ["complete", "failed", "incomplete"]
    summary = (root / "summary.md").read_text()
    assert "strong/DMC/walker_walk/3: **failed** (ML exited with code 1: boom)" in summary
    assert "weak/DMC/walker_walk/3: **incomplete**" in summary
    # DrQ-v2 is pixels 84x84 with frame stack 3: these states runs are left out, and say why
    assert "not drawn: no recipe's runs match its protocol" in summary
    assert "strong: DrQ-v2: agent settings not recorded (published: DrQV2Agent" in summary  # an old card
    assert "DrQ-v2: frame_stack 1 (published: 3); DrQ-v2: observation states (published: pixels 84x84)" in summary
    assert "Atari-100k" in summary and "2 of the 26 Atari-100k games" in summary
    assert "DrQ-v2 (published)" not in set(pd.read_csv(root / "scores.csv").recipe)  # protocol differs
    assert "## Protocols" in summary and "| frame_stack | 1 | 1 |" in summary
    assert "## At the published budgets" in summary and "not reached" in (root / "final_scores.csv").read_text()
    assert provenance_protocols(root)["DMC"]["strong"]["observation"] == "states"
    provenance = json.loads((root / "stats.json").read_text())
    assert provenance["reps"] == 200 and "last 10%" in provenance["final_score"]


def test_plot_commands_experiments_and_task(tree: Path):
    # a second experiment beside the first, then one recipe only, through the real console script
    for seed in range(2):
        write_run(tree, "Y", "strong", "DMC", "cartpole_balance", seed, 950.0, {"pixels": True, "action_repeat": 2})
    proc = subprocess.run([str(BIN / "Plot"), "experiments=[X,Y]", f"results={tree}", "reps=100", "baselines=false"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    both = tree / "plots" / "X+Y"
    assert (both / "poi.png").read_bytes()[:8] == PNG and (both / "summary.md").is_file()
    labels = set(pd.read_csv(both / "comparisons.csv")[["x", "y"]].to_numpy().ravel())
    assert {"strong (X)", "strong (Y)", "weak (X)"} <= labels

    written = plot_cli.run(plot_cli.parse(["experiment=X", "task=weak", f"results={tree}", "reps=50",
                                           "baselines=false"]))
    assert all(p.parent == tree / "X" / "plots" / "weak" for p in written)
    assert set(pd.read_csv(tree / "X" / "plots" / "weak" / "scores.csv").recipe) == {"weak"}
