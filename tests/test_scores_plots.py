"""scores.csv, stats.csv and figures from a results tree written here (real CSV/JSON files), and ``Plot``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ML.benchmarking import analysis, plots, scores, stats
from ML.benchmarking.normalize import ReferenceWarning

BIN = Path(sys.executable).parent
PNG = b"\x89PNG\r\n\x1a\n"


def write_run(root: Path, recipe: str, suite: str, task: str, seed: int, evals: list[tuple[int, float]],
              env: dict, status: str = "complete", experiment: str = "synth") -> Path:
    run_dir = root / experiment / "runs" / recipe / suite / task / str(seed)
    run_dir.mkdir(parents=True)
    frame = pd.DataFrame({"step": [s for s, _ in evals], "frame": [4 * s for s, _ in evals],
                          "episode": range(len(evals)), "time": np.arange(len(evals)) * 0.5,
                          "score": [v for _, v in evals], "accuracy": [v for _, v in evals]})
    frame.to_csv(run_dir / "eval.csv", index=False)
    (run_dir / "train.csv").write_text("step,frame,episode,time,fps\n")
    info = {"status": status, "experiment": experiment, "recipe": recipe, "suite": suite, "task": task,
            "seed": seed, "config": {}, "config_hash": "0" * 16, "command": "ML ...", "versions": {},
            "git_commit": None, "started": "2026-01-01T00:00:00+00:00", "ended": None,
            "final_score": evals[-1][1] if status == "complete" else None, "env": env}
    (run_dir / "run.json").write_text(json.dumps(info))
    return run_dir / "run.json"


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    results = tmp_path / "results"
    digits = {"num_classes": 10, "action_repeat": 1}
    for seed, accs in enumerate([(0.1, 0.82, 0.91), (0.12, 0.8, 0.955), (0.09, 0.7, 0.865)]):
        write_run(results, "classify", "Classify", "Digits", seed, list(zip((0, 50, 100), accs, strict=True)), digits)
    cart = {"reward_threshold": 475.0, "action_repeat": 1}
    write_run(results, "dqn", "Classic", "CartPole-v1", 0, [(0, 20.0), (50, 100.0), (100, 247.5)], cart)
    write_run(results, "dqn", "Classic", "CartPole-v1", 1, [(0, 22.0), (50, 140.0), (100, 475.0)], cart)
    # still training: must never be counted
    write_run(results, "dqn", "Classic", "CartPole-v1", 2, [(0, 9999.0)], cart, status="running")
    # no random baseline measured for Acrobot: NaN and a warning
    write_run(results, "dqn", "Classic", "Acrobot-v1", 0, [(0, -500.0), (50, -300.0), (100, -120.0)],
              {"reward_threshold": -100.0, "action_repeat": 1})
    base = results / "baselines" / "Classic"
    base.mkdir(parents=True)
    (base / "CartPole-v1.json").write_text(json.dumps({"task": "CartPole-v1", "random": 20.0, "episodes": 100}))
    return results


def test_gather_counts_complete_runs_only_and_normalizes(tree: Path):
    lines = []
    with pytest.warns(ReferenceWarning, match="Acrobot-v1") as caught:
        table = scores.gather(scores.find_runs(tree / "synth"), tree / "baselines", log=lines.append)
    assert len([w for w in caught if "Acrobot" in str(w.message)]) == 1  # one warning per task, not per row
    assert list(table.columns) == scores.COLUMNS
    assert len(table) == 3 * 3 + 2 * 3 + 3  # eval rows of the complete runs
    assert 9999.0 not in table.score.values
    assert any("CartPole-v1/2 (running)" in line for line in lines)
    cart = table[(table.task == "CartPole-v1") & (table.step == 100)].set_index("seed")
    assert cart.normalized.to_dict() == pytest.approx({0: 0.5, 1: 1.0})
    digits = table[(table.task == "Digits") & (table.seed == 1) & (table.step == 100)]
    assert digits.normalized.iloc[0] == pytest.approx((0.955 - 0.1) / 0.9)
    assert table[table.task == "Acrobot-v1"].normalized.isna().all()
    assert table.frame.tolist()[:3] == [0, 200, 400]


def test_pipeline_modules_write_scores_stats_and_figures(tree: Path):
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}"}
    run = lambda *a: subprocess.run([sys.executable, "-m", *a], capture_output=True, text=True, env=env, check=True)
    out = run("ML.benchmarking.cli", "gather", "--experiment", "synth", "--results", str(tree))
    assert "warning: no random baseline for Classic task 'Acrobot-v1'" in out.stderr
    assert "not counted, 1 run(s) not complete" in out.stdout
    scores_csv, stats_csv = tree / "synth" / "scores.csv", tree / "synth" / "stats.csv"
    assert len(pd.read_csv(scores_csv)) == 18
    run("ML.benchmarking.cli", "stats", "--scores", str(scores_csv), "--out", str(stats_csv), "--reps", "300")
    table = stats.read_stats(stats_csv)
    assert list(table.columns) == stats.COLUMNS
    assert set(table.metric) == set(stats.METRICS)
    assert set(table.suite) == {"Classic", "Classify"}
    assert set(table.step) == {"final", "0", "50", "100"}
    shown = table[table.suite == "Classify"]  # 3 seeds; Classic has 2 (< stats.MIN_RUNS): no interval
    assert (shown.ci_low <= shown.value + 1e-12).all() and (shown.value <= shown.ci_high + 1e-12).all()
    assert table[table.suite == "Classic"].ci_low.isna().all()
    # CartPole (the one Classic task with a reference): final normalized 0.5 and 1.0 -> mean 0.75
    final = table[(table.suite == "Classic") & (table.step == "final")].set_index("metric")
    assert final.loc["mean", "value"] == pytest.approx(0.75)
    # same seed, same numbers
    run("ML.benchmarking.cli", "stats", "--scores", str(scores_csv), "--out", str(tree / "again.csv"), "--reps", "300")
    pd.testing.assert_frame_equal(table, stats.read_stats(tree / "again.csv"))

    for name in ("stats.json", "profiles.csv", "comparisons.csv", "final_scores.csv", "final_scores.md"):
        assert (tree / "synth" / name).is_file(), name

    frames = analysis.read_tables(tree / "synth")
    written = plots.draw(pd.read_csv(scores_csv), frames, tree / "synth" / "plots", log=lambda *_: None)
    names = sorted(p.name for p in written)
    assert names == sorted(plots.figure_names(["Classic", "Classify"]))
    for path in written:
        assert path.read_bytes()[:8] == PNG and path.stat().st_size > 5000
        assert path.with_suffix(".svg").read_text().lstrip().startswith(("<?xml", "<svg"))
    assert not list((tree / "synth" / "plots").glob(".*tmp"))  # nothing half-written left behind

    # two experiments side by side: one legend entry (and colour) per recipe and experiment
    both_scores = pd.concat([pd.read_csv(scores_csv), pd.read_csv(scores_csv).assign(experiment="other")])
    both = analysis.tables(both_scores, tree / "both", reps=50, log=lambda *_: None)
    written = plots.draw(both_scores, both, tree / "both", log=lambda *_: None)
    assert len(written) == len(plots.figure_names(["Classic", "Classify"]))
    assert all(p.read_bytes()[:8] == PNG for p in written)
    # the same recipes in two experiments are compared with each other
    assert set(both["comparisons"].x) | set(both["comparisons"].y) >= {"classify (other)", "classify (synth)"}


def test_plot_cli_from_existing_runs(tree: Path):
    cmd = [str(BIN / "Plot"), "experiment=synth", f"results={tree}", "reps=200", "baselines=false"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "warning:" in proc.stderr and "Acrobot-v1" in proc.stderr
    for name in plots.figure_names(["Classic", "Classify"]):
        assert (tree / "synth" / "plots" / name).read_bytes()[:8] == PNG
    assert len(pd.read_csv(tree / "synth" / "scores.csv")) == 18
    assert set(stats.read_stats(tree / "synth" / "stats.csv").metric) == set(stats.METRICS)

    # one recipe only, into its own folder
    proc = subprocess.run([*cmd, "task=dqn"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert (tree / "synth" / "plots" / "dqn" / "curves_Classic.png").is_file()
    assert (tree / "synth" / "plots" / "dqn" / "summary.md").is_file()
    assert not (tree / "synth" / "plots" / "dqn" / "curves_Classify.png").exists()


def test_plot_cli_errors_are_one_line(tmp_path: Path):
    proc = subprocess.run([str(BIN / "Plot"), "experiment=nothing", f"results={tmp_path}"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "no runs under" in proc.stderr
    proc = subprocess.run([str(BIN / "Plot"), "colour=red"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "unknown argument 'colour=red'" in proc.stderr
