"""DrQ-v2's own seeds as a comparison entry, scores at the published budgets, and the protocol card's
aggregation — from real run directories written here, through the real aggregation (scores → tables)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ML.benchmarking import analysis, cells, references, scores
from ML.hyperparams import resolve_config
from ML.published import agent_card

MATCHING = {"observation": "pixels 84x84", "sticky_actions": None, "action_set": "continuous [1]",
            "action_repeat": 2, "frame_stack": 3, "eval_episodes": 10, "final_eval_episodes": 10,
            "frame_budget": 1_100_000, "max_episode_frames": 1000, "eval_epsilon": None,
            **agent_card(resolve_config((), {"task": "drqv2"}))}  # the drqv2 recipe's agent: DrQ-v2's


def write_run(root: Path, recipe: str, task: str, seed: int, level: float, card: dict, last: int) -> Path:
    run_dir = root / "E" / "runs" / recipe / "DMC" / task / str(seed)
    run_dir.mkdir(parents=True)
    frame = np.arange(0, last + 1, 10_000)
    pd.DataFrame({"step": frame // 2, "frame": frame, "episode": frame // 1000, "time": frame / 1e4,
                  "score": np.minimum(level, frame / 100.0) + seed}).to_csv(run_dir / "eval.csv", index=False)
    (run_dir / "run.json").write_text(json.dumps({
        "status": "complete", "experiment": "E", "recipe": recipe, "suite": "DMC", "task": task, "seed": seed,
        "env": {"pixels": card["observation"] != "states"}, "protocol": card}))
    return run_dir / "run.json"


@pytest.fixture
def tree(tmp_path: Path) -> tuple[Path, list[Path]]:
    runs = [write_run(tmp_path, "mine", task, seed, 500.0, MATCHING, 1_000_000)
            for task in ("cartpole_balance", "walker_walk") for seed in range(3)]
    runs += [write_run(tmp_path, "states", "cartpole_balance", seed, 900.0,
                       {**MATCHING, "observation": "states", "frame_stack": 1}, 200_000) for seed in range(3)]
    return tmp_path, runs


def test_drqv2_published_is_a_comparison_entry_at_the_same_frames(tree) -> None:
    root, runs = tree
    table = scores.gather(runs, log=lambda _: None)
    published = table[table["recipe"] == references.DRQV2_LABEL]
    # only beside the runs whose protocol matches (pixels): both of "mine"'s tasks, up to their last frame
    assert set(published["task"]) == {"cartpole_balance", "walker_walk"}
    assert published.groupby("task")["seed"].nunique().to_dict() == {"cartpole_balance": 10, "walker_walk": 10}
    assert published["frame"].max() <= 1_000_000 and set(published["frame"] % 20_000) == {0}
    curves = references.drqv2_curves()
    expected = curves[(curves.task == "walker_walk") & (curves.frame == 500_000)]["episode_reward"].mean()
    got = published[(published.task == "walker_walk") & (published.frame == 500_000)]["score"].mean()
    assert got == pytest.approx(expected)

    out = root / "E"
    cell_table = cells.table(runs)
    frames = analysis.tables(table, out, reps=200, cells=cell_table, log=lambda _: None)
    pairs = frames["comparisons"].set_index(["x", "y"])
    row = pairs.loc[(references.DRQV2_LABEL, "mine")]  # DrQ-v2 ~990 on cartpole; "mine" ~500 on both tasks
    # cartpole: every DrQ-v2 seed beats every run (1.0); walker_walk: 8 of 10 (2 of DrQ-v2's seeds end near 25)
    assert row.verdict == "better" and row.poi == pytest.approx((1.0 + 0.8) / 2) and row.tasks == 2
    finals = frames["stats"]
    assert {references.DRQV2_LABEL, "mine", "states"} <= set(finals["recipe"])
    summary = analysis.summary(out / "summary.md", "E", table, frames, cell_table, []).read_text()
    assert references.DRQV2_SOURCE in summary and f"{references.DRQV2_LABEL} is better than mine" in summary


def test_scores_at_the_published_budgets(tree) -> None:
    root, runs = tree
    table = scores.gather(runs, published=False, log=lambda _: None)
    check = analysis.checkpoint_scores(table, cells.table(runs)).set_index(["recipe", "task", "at"])
    mine = check.loc[("mine", "cartpole_balance", "100k frames")]
    assert (mine.score_mean, mine.seeds, mine.published, mine.published_seeds) == (501.0, 3, 987.0, 10)
    late = check.loc[("mine", "cartpole_balance", "1M (980k) frames")]  # DrQ-v2's curve ends at 980k
    assert late.frame == 980_000 and late.published == 993.0
    assert check.loc[("mine", "walker_walk", "1M frames")].frame == 1_000_000
    states = check.loc[("states", "cartpole_balance", "500k frames")]
    assert states.seeds == 0 and "not reached: runs end at 200000 frames" in states.note
    assert "protocol differs" in states.note and "observation states" in states.note
    frames = analysis.tables(table, root / "E", reps=100, cells=cells.table(runs), log=lambda _: None)
    final = pd.read_csv(root / "E" / "final_scores.csv")
    assert {"final", "100k frames", "500k frames", "1M (980k) frames", "1M frames"} <= set(final["at"])
    text = (root / "E" / "final_scores.md").read_text()
    assert "| DMC | cartpole_balance | 1M (980k) frames | 993 (n=10) |" in text
    protocols = json.loads((root / "E" / "stats.json").read_text())["protocols"]["DMC"]
    assert protocols["mine"]["frame_stack"] == 3 and protocols["states"]["observation"] == "states"
    assert frames["provenance"]["references"]["DMC"]["matched"] == ["mine"]


def test_mixed_protocols_are_named() -> None:
    table = pd.DataFrame({"experiment": "E", "recipe": "r", "suite": "Atari", "task": ["pong", "breakout"],
                          "seed": 0, "status": "complete", "reason": "", "frames": 1.0,
                          "protocol": [json.dumps({"sticky_actions": 0.0}), json.dumps({"sticky_actions": 0.25})]})
    assert analysis.suite_protocols(table)["Atari"]["r"]["sticky_actions"] == "mixed: 0.0 | 0.25"


def test_video_pinball_convention_is_stated() -> None:
    table = pd.DataFrame({"experiment": "E", "recipe": "r", "suite": "Atari", "task": ["videopinball"], "seed": 0,
                          "step": 0, "frame": 0.0, "time": 0.0, "score": 20000.0, "normalized": 1.0})
    notes = analysis.reference_notes(table, None)
    assert any("Video Pinball's random score is 16256.9" in n for n in notes)
    assert references.atari_human_random("videopinball") == (16256.9, 17667.9)
