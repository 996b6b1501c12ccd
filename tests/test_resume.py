"""Verified resume: a run killed at any moment and started again with the same command ends exactly as an
uninterrupted run (CPU, same seed): same eval.csv, same train.csv rows, same replay."""

from __future__ import annotations

import csv
import signal
import subprocess
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from tests.conftest import BIN, run_ml

ARGS = ["task=dqn", "train_steps=2400", "evaluate_per_steps=600", "evaluate_episodes=2", "log_per_steps=100",
        "agent.learn_start=200", "batch_size=32", "save_per_steps=400", "threads=1", "progress=false"]
RUN = "results/Exp/runs/dqn/Classic/CartPole-v1/0"


def table(path: Path, drop: tuple[str, ...] = ("time", "fps")) -> list[dict[str, str]]:
    with path.open() as f:
        return [{k: v for k, v in row.items() if k not in drop} for row in csv.DictReader(f)]


def kill_after_checkpoint(cwd: Path, sig: int, at_least: int) -> None:
    """Start the real ML and kill it with ``sig`` once a periodic checkpoint at step ≥ ``at_least`` exists."""
    import torch

    proc = subprocess.Popen([str(BIN / "ML"), *ARGS], cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    ckpt = cwd / RUN / "agent.pt"
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if ckpt.exists():
            try:
                if torch.load(ckpt, weights_only=False)["state"]["step"] >= at_least:
                    break
            except Exception:  # the file is being replaced right now
                pass
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be interrupted"
    proc.send_signal(sig)
    proc.wait(timeout=60)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cwd = tmp_path_factory.mktemp("whole")
    run_ml(*ARGS, cwd=cwd)
    return cwd / RUN


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_killed_and_resumed_run_ends_like_an_uninterrupted_one(tmp_path: Path, uninterrupted: Path,
                                                               sig: int) -> None:
    kill_after_checkpoint(tmp_path, sig, at_least=400)
    run = tmp_path / RUN
    assert len(table(run / "eval.csv")) < len(table(uninterrupted / "eval.csv"))
    out = run_ml(*ARGS, cwd=tmp_path).stdout  # the same command
    assert "resuming" in out
    assert table(run / "eval.csv") == table(uninterrupted / "eval.csv")
    assert table(run / "train.csv") == table(uninterrupted / "train.csv")
    with h5py.File(run / "replay.h5") as a, h5py.File(uninterrupted / "replay.h5") as b:
        for name in ("obs", "action", "reward", "episodes"):
            np.testing.assert_array_equal(a[name][()], b[name][()])
