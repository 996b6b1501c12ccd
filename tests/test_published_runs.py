"""Published per-seed runs shipped with the package (Tianshou's MuJoCo runs, pytorch_sac's DMC-from-states
runs) drawn beside matching runs of ours as their own labelled entries, and MuJoCo's normalization."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ML.benchmarking import references, scores
from ML.benchmarking.normalize import normalize
from tests.conftest import run_ml

TABLES = Path(references.__file__).parent / "reference"


def test_the_tables_ship_and_are_cited() -> None:
    readme = (TABLES / "README.md").read_text()
    for name in ("mujoco_tianshou_runs.csv", "dmc_states_sac_runs.csv"):
        assert (TABLES / name).is_file() and f"`{name}`" in readme
    runs = references.table("mujoco_tianshou_runs")
    assert set(runs["env"].str.rpartition("-")[2]) == {"v2", "v3"}  # gym's versions, not gymnasium's v5
    assert runs.groupby(["agent", "env"])["seed"].nunique().eq(10).all()


def test_mujoco_normalization_is_tianshou_sac_untrained_to_1m() -> None:
    rows = pd.read_csv(TABLES / "mujoco_tianshou_runs.csv")
    hopper = rows[(rows["agent"] == "sac") & (rows["env"] == "Hopper-v3")]
    low = hopper[hopper["step"] == 0]["score"].mean()
    # Tianshou's SAC step counts start after its 10,000 random steps: env step = its step + 10,000
    high = np.mean([g[g["step"] + 10_000 >= 1_000_000].sort_values("step")["score"].iloc[0]
                    for _, g in hopper.groupby("seed")])
    assert references.mujoco_bounds("Hopper-v5") == pytest.approx((low, high))
    assert 3000 < high < 4000  # the README's 3542 (max of the mean curve) is of this size
    assert normalize(high, "MuJoCo", "Hopper-v5") == pytest.approx(1.0)
    low, high = references.mujoco_bounds("Reacher-v5")
    assert low < high < 0  # negative returns still scale the right way up


def test_published_runs_are_labelled_with_their_version_and_cut_at_our_budget() -> None:
    ours = pd.DataFrame({"experiment": ["E"]})
    extra = scores.published_runs(ours, {("MuJoCo", "Hopper-v5", "sac"): 100_000,
                                         ("DMC", "cheetah_run", "sac"): 60_000}, None)
    mujoco = extra[extra["suite"] == "MuJoCo"]
    assert set(mujoco["recipe"]) == {"Tianshou SAC (published, gym v3)"} and set(mujoco["task"]) == {"Hopper-v5"}
    assert mujoco["seed"].nunique() == 10 and mujoco["step"].max() <= 100_000 and mujoco["normalized"].notna().all()
    assert mujoco["step"].min() == 10_000  # its first evaluation, after its 10,000 uncounted random steps
    ppo = scores.published_runs(ours, {("MuJoCo", "Hopper-v5", "ppo"): 30_720}, None)
    assert set(ppo["step"]) == {0, 30_720}  # the on-policy trainer counts every step
    dmc = extra[extra["suite"] == "DMC"]
    assert set(dmc["recipe"]) == {references.SAC_DMC_LABEL} and dmc["step"].max() == 60_000
    np.testing.assert_allclose(dmc["normalized"], dmc["score"] / 1000)


def test_gather_adds_them_beside_matching_runs_only(tmp_path: Path) -> None:
    """The agent card decides, not the recipe's name: ppo_mujoco as Tianshou ran it gets Tianshou's PPO runs,
    sac_mujoco with another network gets none, a sac run on DMC states gets pytorch_sac's only with its agent."""
    import json

    common = ["train_steps=0", "threads=1", "progress=false"]
    run_ml("task=ppo_mujoco", "evaluate_episodes=10", *common, cwd=tmp_path)
    run_ml("task=sac_mujoco", "env.task=InvertedPendulum-v5", "agent.hidden_dim=32", *common, cwd=tmp_path)
    run_ml("task=sac", "Env=DMC", "env.task=cartpole_balance", "env.pixels=false", "env.action_repeat=1",
           "evaluate_episodes=1", "agent.hidden_dim=32", *common, cwd=tmp_path)
    jsons = sorted((tmp_path / "results").rglob("run.json"))
    lines: list[str] = []
    table = scores.gather(jsons, log=lines.append)
    entries = table.groupby(["suite", "task"])["recipe"].unique().map(set).to_dict()
    assert entries[("MuJoCo", "Hopper-v5")] == {"ppo_mujoco", "Tianshou PPO (published, gym v3)"}
    assert entries[("MuJoCo", "InvertedPendulum-v5")] == {"sac_mujoco"}  # hidden_dim 32 is not Tianshou's SAC
    assert any("gym v3/v2, ours gymnasium v5: not pooled" in line for line in lines)
    assert table[table["recipe"] == "ppo_mujoco"]["normalized"].notna().all()
    from ML.benchmarking import analysis

    notes = [n for n in analysis.reference_notes(table, None) if n.startswith("MuJoCo")]
    assert len(notes) == 1 and "gym v3" in notes[0] and "gymnasium v5" in notes[0] and "never pooled" in notes[0]
    # DMC from states at action repeat 1 is pytorch_sac's protocol but for the episodes and the network
    card = json.loads(next(p for p in jsons if "DMC" in str(p)).read_text())["protocol"]
    assert references.SAC_DMC_REFERENCE.mismatches(card) == [
        "pytorch_sac: eval_episodes 1 (published: 10)", "pytorch_sac: agent.learn_start 100 (published: 5000)",
        "pytorch_sac: agent.hidden_dim 32 (published: 1024)", "pytorch_sac: agent.ent_coef 1.0 (published: 0.1)",
        "pytorch_sac: agent.target_every 1 (published: 2)", "pytorch_sac: lr 0.001 (published: 0.0001)",
        "pytorch_sac: batch_size 256 (published: 1024)"]
    theirs = {**card, **references.PYTORCH_SAC.card}
    assert references.SAC_DMC_REFERENCE.matched(theirs) == "pytorch_sac"
    assert references.SAC_DMC_REFERENCE.mismatches({**theirs, "action_repeat": 2})
    assert entries[("DMC", "cartpole_balance")] == {"sac"}


def test_the_dmc_states_suite_carries_pytorch_sacs_protocol() -> None:
    from ML.benchmarking import grid, protocols

    suite = grid.load_suite("dmc_states")
    assert suite.env == "DMC" and len(suite.tasks) == 27
    assert set(suite.tasks) == set(references.table("dmc_states_sac_runs")["task"])
    args = protocols.load("pytorch_sac").task_args("cheetah_run", None)
    assert args["env.action_repeat"] == 1 and args["env.pixels"] is False and args["train_steps"] == 1_000_000
