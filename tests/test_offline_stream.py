"""offline=true learns from a saved replay without stepping the environment; stream=true keeps no replay."""

from __future__ import annotations

import csv
from pathlib import Path

import h5py

import ML
from tests.conftest import run_ml

BASE = ["task=dqn", "train_steps=300", "evaluate_per_steps=300", "evaluate_episodes=1", "log_per_steps=100",
        "agent.learn_start=50", "batch_size=16", "threads=1", "progress=false"]
RUN = "results/Exp/runs/dqn/Classic/CartPole-v1/0"


def test_offline_learns_from_the_saved_replay_only(tmp_path: Path) -> None:
    run_ml(*BASE, cwd=tmp_path)
    replay = tmp_path / RUN / "replay.h5"
    with h5py.File(replay) as f:
        frames = f["obs"].shape[0]
    refused = run_ml(*BASE, "offline=true", cwd=tmp_path, check=False)  # the complete online run is kept
    assert refused.returncode == 2 and "overwrite=true" in refused.stderr
    run_ml(*BASE, "offline=true", "overwrite=true", cwd=tmp_path)
    with h5py.File(replay) as f:
        assert f["obs"].shape[0] == frames  # nothing was added: no environment steps
    rows = list(csv.DictReader((tmp_path / RUN / "train.csv").open()))
    assert rows and all(int(r["frame"]) == 0 for r in rows) and "loss" in rows[-1]
    agent = ML.load_agent(str(tmp_path / RUN))  # every scheduled update ran, on the saved transitions alone
    scheduled = [s for s in range(300) if s >= agent.learn_start and s % agent.update_every == 0]
    assert agent.updates == len(scheduled) * agent.updates_per_step > 0


def test_offline_without_a_replay_is_one_line(tmp_path: Path) -> None:
    proc = run_ml(*BASE, "offline=true", cwd=tmp_path, check=False)
    assert proc.returncode == 2 and "offline=true learns from a saved replay" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_stream_keeps_no_replay(tmp_path: Path) -> None:
    run_ml(*BASE, "stream=true", cwd=tmp_path)
    run = tmp_path / RUN
    assert not (run / "replay.h5").exists()
    assert "loss" in list(csv.DictReader((run / "train.csv").open()))[-1]
