"""DrQ-v2's own seeds as a comparison entry, scores at the published budgets, and the protocol card's
aggregation — from real run directories written here, through the real aggregation (scores → tables)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ML import layout
from ML.benchmarking import analysis, cells, normalize, published, references, scores, stats
from ML.hyperparams import resolve_config
from ML.published import DRQ_EPS, agent_card, compare

MATCHING = {"observation": "pixels 84x84", "sticky_actions": None, "action_set": "continuous [1]",
            "action_repeat": 2, "frame_stack": 3, "eval_episodes": 10, "final_eval_episodes": 10,
            "frame_budget": 1_100_000, "max_episode_frames": 1000, "eval_epsilon": None,
            **agent_card(resolve_config((), {"task": "drqv2"}))}  # the drqv2 recipe's agent: DrQ-v2's


def write_run(root: Path, recipe: str, task: str, seed: int, level: float, card: dict, last: int) -> Path:
    run_dir = layout.run_dir(root, "E", recipe, "DMC", task, seed)
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
    row = pairs.loc[("mine", references.DRQV2_LABEL)]  # DrQ-v2 ~990 on cartpole; "mine" ~500 on both tasks
    # cartpole: every DrQ-v2 seed beats every run (1.0); walker_walk: 8 of 10 (2 of DrQ-v2's seeds end near 25)
    assert row.verdict == "worse" and row.poi == pytest.approx(1 - (1.0 + 0.8) / 2) and row.tasks == 2
    finals = frames["stats"]
    assert {references.DRQV2_LABEL, "mine", "states"} <= set(finals["recipe"])
    summary = analysis.summary(out / "summary.md", "E", table, frames, cell_table, []).read_text()
    assert references.DRQV2_SOURCE in summary and f"mine is worse than {references.DRQV2_LABEL}" in summary


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


# Atari-100k: rliable's per-run data shipped with the package, and each run placed among it

# the card of a run of the atari100k recipe: DrQ(eps)'s published configuration, environment and agent
ATARI100K_CARD = {"observation": "pixels 84x84", "eval_epsilon": 0.001, "eval_episodes": 10, **DRQ_EPS.card}


def test_published_runs_give_the_published_iqms() -> None:
    runs = published.atari100k_runs()
    assert set(runs["agent"]) >= {"DER", "DrQ", "DrQ(eps)", "SPR", "CURL", "OTRainbow", "SimPLe", "PlayVirtual"}
    assert set(runs["task"]) == references.atari100k_games()
    # rliable's human-normalized IQM over 26 games x 100 runs (Agarwal et al. 2021, Atari-100k)
    for agent, published_iqm in {"DrQ(eps)": 0.280, "SPR": 0.337, "DER": 0.183}.items():
        rows = runs[runs["agent"] == agent]
        tasks = [normalize.normalize(g["score"].to_numpy(float), "Atari", task) for task, g in rows.groupby("task")]
        assert len(tasks) == 26 and {len(t) for t in tasks} == {100}
        assert round(stats.iqm(tasks), 3) == published_iqm, agent
    # DER's curves end (100k steps) on exactly its final scores
    curves = published.der_curves()
    last = curves[curves["step"] == 100_000].merge(runs[runs["agent"] == "DER"], on=["game", "run"])
    assert len(last) == 2600 and (last["score_x"] == last["score_y"]).all()


def write_atari(root: Path, recipe: str, game: str, seed: int, final: float, card: dict) -> Path:
    run_dir = root / "E" / "runs" / recipe / "Atari" / game / str(seed)
    run_dir.mkdir(parents=True)
    step = np.array([0, 50_000, 100_000])
    pd.DataFrame({"step": step, "frame": step * 4, "episode": step // 1000, "time": step / 100.0,
                  "score": [0.0, final / 2, final]}).to_csv(run_dir / "eval.csv", index=False)
    (run_dir / "run.json").write_text(json.dumps({
        "status": "complete", "experiment": "E", "recipe": recipe, "suite": "Atari", "task": game, "seed": seed,
        "env": {"game": game}, "protocol": {**card, "reference": compare(card, "Atari")}}))
    return run_dir / "run.json"


def test_a_run_is_placed_among_the_published_runs(tmp_path: Path) -> None:
    runs = [write_atari(tmp_path, "atari100k", "roadrunner", 0, 11_360.0, ATARI100K_CARD),
            write_atari(tmp_path, "sticky", "roadrunner", 0, 11_360.0, {**ATARI100K_CARD, "sticky_actions": 0.25})]
    table = scores.gather(runs, log=lambda _: None)
    entry = table[table["recipe"] == "DrQ(eps) (published)"]
    # only beside the run whose protocol matches; all 100 published runs of that game, at 100k steps
    assert len(entry) == 100 and set(entry["task"]) == {"roadrunner"} and set(entry["frame"]) == {400_000}
    frames = analysis.tables(table, tmp_path / "E", reps=200, cells=cells.table(runs), log=lambda _: None)
    final = pd.read_csv(tmp_path / "E" / "final_scores.csv")
    row = final[(final["recipe"] == "atari100k") & (final["at"] == "final")].iloc[0]
    assert row["published_agent"] == "DrQ(eps)" and row["published_seeds"] == 100 and row["percentile"] == 58.0
    assert row["placement"] == "RoadRunner 11,360: 58th percentile of 100 published DrQ(eps) runs"
    assert final[final["recipe"] == "sticky"]["placement"].isna().all()  # protocol differs: not placed
    assert "atari100k seed 0: RoadRunner 11,360: 58th percentile" in (tmp_path / "E" / "final_scores.md").read_text()
    pair = frames["comparisons"].set_index(["x", "y"]).loc[("atari100k", "DrQ(eps) (published)")]
    assert pair.verdict == "not enough runs" and "n = 1 and 100" in pair.sentence and np.isnan(pair.ci_low)
    summary = analysis.summary(tmp_path / "E" / "summary.md", "E", table, frames, cells.table(runs), []).read_text()
    placed = summary.index("atari100k: RoadRunner 11,360: 58th percentile of 100 published DrQ(eps) runs")
    assert summary.index("## Verdicts") < summary.index("## Headline: normalized IQM") < placed
    assert placed < summary.index("## Protocols")


def test_five_seeds_are_compared_with_the_published_runs(tmp_path: Path) -> None:
    # far above every published run on 3 games, 5 seeds each: rliable's comparison decides it
    runs = [write_atari(tmp_path, "atari100k", game, seed, 200_000.0 + seed, ATARI100K_CARD)
            for game in ("pong", "boxing", "roadrunner") for seed in range(5)]
    table = scores.gather(runs, log=lambda _: None)
    frames = analysis.tables(table, tmp_path / "E", reps=300, cells=cells.table(runs), log=lambda _: None)
    pair = frames["comparisons"].set_index(["x", "y"]).loc[("atari100k", "DrQ(eps) (published)")]
    assert pair.verdict == "better" and pair.poi == 1.0 and pair.tasks == 3
    assert "On Atari, atari100k is better than DrQ(eps) (published)" in pair.sentence
    iqm = frames["stats"].query("step == 'final' and metric == 'iqm' and suite == 'Atari'").set_index("recipe")
    # the published entry is aggregated over the same 3 games only, with its bootstrap interval
    mine = published.atari100k_runs().query("agent == 'DrQ(eps)' and task in ['pong', 'boxing', 'roadrunner']")
    expected = stats.iqm([normalize.normalize(g["score"].to_numpy(float), "Atari", t) for t, g in mine.groupby("task")])
    assert iqm.loc["DrQ(eps) (published)", "value"] == pytest.approx(expected)
    assert iqm.loc["DrQ(eps) (published)", "ci_low"] < expected < iqm.loc["DrQ(eps) (published)", "ci_high"]
    final = pd.read_csv(tmp_path / "E" / "final_scores.csv").query("at == 'final' and recipe == 'atari100k'")
    assert set(final["percentiles"]) == {"100; 100; 100; 100; 100"}
    assert "Pong, 5 runs: 100th, 100th, 100th, 100th and 100th percentiles of 100 published DrQ(eps) runs " \
           "(mean 100)" in set(final["placement"])
