"""Stops at exact moments: every task kind, stopped by ^C or SIGTERM (a clean stop, exit 130 / 143) or killed by
SIGKILL at each boundary of its loop, resumes with the same command and ends with the files of an uninterrupted
run. The moment is chosen with ``ML_STOP_AT`` (``ML.stops``): the process signals itself there. Clean stops run
in this process (``ML``'s own entry point, fewer startups), kills in a real ``ML`` process. Also: a stop during
a long evaluation ends the process within seconds, the evaluation's progress bar, and an interrupted snakemake
grid that the same command finishes."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml

from tests.conftest import BIN, run_ml
from tests.test_pipeline import SNAKEFILE, job_counts, snakemake
from tests.test_resume import assert_same_run, table

COMMON = ["threads=1", "progress=false"]

# kind: (command, run directory, [(ML_STOP_AT, exit status)]), each stop resuming the run the one before left;
# between them every boundary is hit by a clean stop and by a kill: the set-up (the replay made, no run.json yet:
# a grid's ^C can land there), a training step in the warm-up (before the
# first update, before the first checkpoint), a train.csv / eval.csv row, the first row with loss columns
# (new_column), the middle of an evaluation, of a checkpoint write and of a replay.h5 flush.
KINDS = {
    "classify": (["task=classify", "train_steps=300", "evaluate_per_steps=100", "log_per_steps=10",
                  "save_per_steps=50", "batch_size=32"], "Exp/runs/classify/Classify/Digits/0",
                 [("step@20:INT", 130), ("evaluate@2:TERM", 143), ("checkpoint@1:KILL", -9),
                  ("eval_row@1:KILL", -9), ("train_row@3:TERM", 143), ("checkpoint@1:INT", 130),
                  ("finished@1:KILL", -9)]),  # killed after the last checkpoint: the next run only completes
    # eval_eps > 0: evaluation draws from the agent's generator, which a stopped evaluation must put back
    "dqn": (["task=dqn", "train_steps=600", "evaluate_per_steps=200", "evaluate_episodes=3", "log_per_steps=50",
             "agent.learn_start=100", "agent.eval_eps=0.2", "batch_size=32", "save_per_steps=150"],
            "Exp/runs/dqn/Classic/CartPole-v1/0",
            [("opened@1:KILL", -9), ("step@60:INT", 130), ("new_column@1:KILL", -9), ("evaluate@1:TERM", 143),
             ("flush@1:KILL", -9), ("checkpoint@1:KILL", -9), ("eval_row@1:INT", 130), ("train_row@2:KILL", -9)]),
    "drqv2": (["task=drqv2_states", "Env=Classic", "env={task: Pendulum-v1}", "train_steps=500",
               "evaluate_per_steps=200", "evaluate_episodes=2", "log_per_steps=50", "save_per_steps=100",
               "agent.learn_start=100", "agent.num_expl_steps=100", "agent.hidden_dim=32", "agent.feature_dim=16",
               "batch_size=32", "device=cpu"], "Exp/runs/drqv2_states/Classic/Pendulum-v1/0",
              [("step@30:KILL", -9), ("step@50:TERM", 143), ("new_column@1:INT", 130), ("flush@1:KILL", -9),
               ("evaluate@1:INT", 130), ("eval_row@1:KILL", -9)]),
    # tasks of two kinds sharing a Trunk: a stop in the second task's evaluation (its first progress tick, after
    # the DQN's 3 episodes) puts back the first's evaluation count and the DQN's generator (eval_eps > 0)
    "together-across": (["task=digits_cartpole", "train_steps=400", "evaluate_per_steps=200",
                         "log_per_steps=50", "save_per_steps=100", "together=[{task: dqn, train_steps: 300, "
                         "agent.learn_start: 60, agent.eval_eps: 0.2, batch_size: 32, evaluate_episodes: 3}, "
                         "{task: classify, train_steps: 100, batch_size: 32}]"],
                        "Exp/runs/digits_cartpole/Together/CartPole-v1+Digits/0",
                        [("step@40:INT", 130), ("evaluate@4:TERM", 143), ("checkpoint@1:KILL", -9),
                         ("eval_row@1:INT", 130), ("train_row@2:KILL", -9)]),
    "gan": (["task=dcgan", "train_steps=200", "evaluate_per_steps=120", "log_per_steps=20", "save_per_steps=40",
             "batch_size=16", "agent.eval_samples=64", "agent.grid=4", "model.channels=8",
             "discriminator.channels=8"], "Exp/runs/dcgan/Generate/Digits/0",
            [("train_row@2:INT", 130), ("checkpoint@2:KILL", -9), ("evaluate@2:TERM", 143),
             ("eval_row@1:KILL", -9)]),
}


def ml_here(args: list[str], monkeypatch: pytest.MonkeyPatch, stop_at: str | None = None) -> int:
    """``ML`` in this process; its exit status."""
    from ML.cli import main

    if stop_at:
        monkeypatch.setenv("ML_STOP_AT", stop_at)
    else:
        monkeypatch.delenv("ML_STOP_AT", raising=False)
    try:
        return main(args)
    except SystemExit as e:
        return int(e.code)
    finally:
        monkeypatch.delenv("ML_STOP_AT", raising=False)


@pytest.mark.parametrize("kind", list(KINDS))
def test_stopped_or_killed_at_every_boundary_the_run_resumes_exactly(kind: str, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    command, where, stops = KINDS[kind]
    whole = [*command, *COMMON, f"results={tmp_path / 'whole'}"]
    assert ml_here(whole, monkeypatch) == 0
    args = [*command, *COMMON, f"results={tmp_path / 'results'}"]
    run = tmp_path / "results" / where
    for stop_at, expected in stops:
        if expected == -9:
            code = run_ml(*args, cwd=tmp_path, check=False, ML_STOP_AT=stop_at).returncode
        else:
            code = ml_here(args, monkeypatch, stop_at)
        assert code == expected, stop_at
        if stop_at.startswith("opened"):  # killed in its set-up: nothing recorded yet, its replay at most
            assert {f.name for f in run.iterdir()} <= {"replay.h5"}, stop_at
            continue
        status = json.loads((run / "run.json").read_text())["status"]
        assert status == ("running" if expected == -9 else "interrupted"), stop_at
    capsys.readouterr()
    assert ml_here(args, monkeypatch) == 0
    assert "resuming" in capsys.readouterr().out  # (classify: from its finished checkpoint, only to complete)
    assert_same_run(run, tmp_path / "whole" / where)
    info = json.loads((run / "run.json").read_text())
    assert info["resume_exact"] is True
    assert not list(run.glob(".agent.pt.*.tmp"))  # a write cut short by a kill leaves nothing behind


def test_a_vector_run_is_exact_when_stopped_at_a_checkpoint_and_says_so_when_not(tmp_path: Path,
                                                                                  monkeypatch: pytest.MonkeyPatch
                                                                                  ) -> None:
    """env.num_envs=2 restarts its games at every checkpoint: stopped right after a periodic one, the run keeps
    it (exact); stopped between two, it checkpoints anyway (nothing lost) and run.json says resume_exact false."""
    args = ["task=dqn_atari", "env.num_envs=2", "train_steps=200", "save_per_steps=100", "agent.learn_start=1000",
            "env.max_episode_frames=400", "replay.capacity=2000", "evaluate_per_steps=0", "evaluate_episodes=1",
            "log_per_steps=50", "device=cpu", *COMMON]
    whole, at_checkpoint, between = tmp_path / "whole", tmp_path / "at", tmp_path / "between"
    assert ml_here([*args, f"run_dir={whole}"], monkeypatch) == 0
    assert ml_here([*args, f"run_dir={at_checkpoint}"], monkeypatch, "train_row@2:TERM") == 143  # step 100
    assert ml_here([*args, f"run_dir={at_checkpoint}"], monkeypatch) == 0
    assert_same_run(at_checkpoint, whole)
    assert json.loads((at_checkpoint / "run.json").read_text())["resume_exact"] is True
    assert ml_here([*args, f"run_dir={between}"], monkeypatch, "train_row@3:INT") == 130  # step 150
    assert ml_here([*args, f"run_dir={between}"], monkeypatch) == 0
    info = json.loads((between / "run.json").read_text())
    assert info["status"] == "complete" and info["resume_exact"] is False and info["resume_inexact_at"] == 150
    assert "restart" in info["resume_note"]
    assert table(between / "train.csv")[:3] == table(whole / "train.csv")[:3]


def test_a_resume_from_a_replay_that_overwrote_frames_says_it_is_not_exact(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """replay.capacity smaller than the frames stored: the ring reloads in another order, its samples differ."""
    args = ["task=dqn", "train_steps=300", "evaluate_per_steps=0", "evaluate_episodes=1", "log_per_steps=50",
            "agent.learn_start=50", "replay.capacity=100", *COMMON]
    early, late = tmp_path / "early", tmp_path / "late"
    for run, stop_at in ((early, "step@40:TERM"), (late, "step@200:TERM")):
        assert ml_here([*args, f"run_dir={run}"], monkeypatch, stop_at) == 143
        assert ml_here([*args, f"run_dir={run}"], monkeypatch) == 0
    assert json.loads((early / "run.json").read_text())["resume_exact"] is True  # stopped before it wrapped
    info = json.loads((late / "run.json").read_text())
    assert info["resume_exact"] is False and info["resume_inexact_at"] == 200
    assert "replay.capacity" in info["resume_note"]


def test_a_stop_during_a_long_evaluation_ends_within_seconds(tmp_path: Path) -> None:
    """^C to the process group while the first of 100000 evaluation episodes play: the evaluation is dropped,
    the checkpoint is the moment before it (which a resume evaluates again), exit 130."""
    args = ["task=dqn", "train_steps=100", "evaluate_episodes=100000", *COMMON]
    run = tmp_path / "results/Exp/runs/dqn/Classic/CartPole-v1/0"
    proc = subprocess.Popen([str(BIN / "ML"), *args], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        deadline = time.time() + 120
        while not (run / "run.json").exists() and time.time() < deadline and proc.poll() is None:
            time.sleep(0.05)
        time.sleep(1.0)  # well inside the evaluation at step 0 (minutes long)
        assert proc.poll() is None, proc.stdout.read()
        os.killpg(proc.pid, signal.SIGINT)
        sent = time.monotonic()
        out, _ = proc.communicate(timeout=60)
        took = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 130, out
    assert took < 10, f"{took:.1f} s from ^C to exit"  # a correctness bound (an evaluation takes minutes)
    assert "stopped by SIGINT at step 0" in out and "Traceback" not in out
    state = torch.load(run / "agent.pt", weights_only=True)["run"]
    assert state["step"] == 0 and state["evaluated"] == -1  # the evaluation is to be done again
    assert json.loads((run / "run.json").read_text())["status"] == "interrupted"
    assert not (run / "eval.csv").exists()


def test_evaluation_shows_episodes_done_with_an_eta(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    args = ["task=dqn", "train_steps=10", "evaluate_per_steps=0", "evaluate_episodes=5", "threads=1",
            f"results={tmp_path}"]
    assert ml_here([*args, "progress=true"], monkeypatch) == 0
    err = capsys.readouterr().err
    for step in (0, 10):  # tqdm: done/total, rate and time left
        assert re.search(rf"eval  step {step}: +100%\S* 5/5 \[[0-9:]+<[0-9:]+, +[0-9.]+episode/s\]", err), err
    assert ml_here([*args, "progress=false", "seed=1"], monkeypatch) == 0
    assert "episode" not in capsys.readouterr().err


# ---- the pipeline ----------------------------------------------------------------------------------------------

CELL = ["train_steps=600", "evaluate_per_steps=300", "evaluate_episodes=2", "agent.learn_start=100",
        "save_per_steps=50", "log_per_steps=100"]
GRID = {"experiment": "intr", "seeds": [0, 1, 2], "threads": 1, "stats": {"reps": 20, "seed": 0},
        "grid": [{"recipe": "dqn", "suite": "Classic", "tasks": ["CartPole-v1"], "args": CELL}]}


def _checkpointed(root: Path) -> list[Path]:
    """Run directories whose agent.pt is a checkpoint past step 0."""
    found = []
    for path in root.glob("runs/*/*/*/*/agent.pt"):
        try:
            if torch.load(path, weights_only=True)["run"]["step"] > 0:
                found.append(path.parent)
        except Exception:  # noqa: BLE001 - being replaced right now
            pass
    return found


def test_an_interrupted_grid_finishes_when_started_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """^C to snakemake's process group mid-grid: the stopped cells keep their run directory and checkpoint and
    record no status, nothing of the pipeline's own outputs is written, and the exit status says so; the same
    command then resumes them (ending as uninterrupted runs do), trains the others and exits 0."""
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(GRID))
    root = tmp_path / "results" / "intr"
    target = "results/intr/cells.csv"
    command = [str(BIN / "snakemake"), "--snakefile", str(SNAKEFILE), "--directory", str(tmp_path),
               "--configfile", str(tmp_path / "config.yaml"), "--cores", "2", target]
    proc = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}"}, start_new_session=True)
    try:
        deadline = time.time() + 180
        while not _checkpointed(root) and time.time() < deadline and proc.poll() is None:
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGINT)  # a terminal's ^C reaches snakemake, the cell wrappers and ML
        out, _ = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode != 0, out
    # a cell stopped while it set up (before its run.json) left at most its replay, which the next start clears
    recorded = [p for p in root.glob("runs/*/*/*/*") if (p / "run.json").exists()]
    for run in set(root.glob("runs/*/*/*/*")) - set(recorded):
        assert {f.name for f in run.iterdir()} <= {"replay.h5"}, run
    stopped = [p for p in recorded if json.loads((p / "run.json").read_text())["status"] == "interrupted"]
    assert stopped, out
    for run in stopped:
        assert (run / "agent.pt").is_file()
        assert not (root / "cells" / run.relative_to(root / "runs").parent / f"{run.name}.json").exists()
    assert "cell interrupted (SIGINT)" in out and "The same command resumes" in out
    assert not (root / "cells.csv").exists() and not (root / "scores.csv").exists()  # partial/ at most

    done = len(list(root.glob("cells/*/*/*/*.json")))  # cells that completed before the ^C
    again = snakemake(tmp_path, "--cores", "2", target)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert job_counts(again.stdout + again.stderr)["train_small"] == 3 - done
    cells = pd.read_csv(root / "cells.csv")
    assert len(cells) == 3 and (cells.status == "complete").all()
    for seed in range(3):
        record = json.loads((root / f"cells/dqn/Classic/CartPole-v1/{seed}.json").read_text())
        assert record["status"] == "complete" and record["failures"] == 0
    for run in stopped:  # resumed, and equal to a run never interrupted
        assert "resuming" in (root / "logs/train/dqn/Classic/CartPole-v1" / f"{run.name}.log").read_text()
        whole = tmp_path / "whole"
        args = ["task=dqn", "Env=Classic", "env.task=CartPole-v1", f"seed={run.name}", "experiment=intr",
                f"results={whole}", *COMMON, *CELL]
        assert ml_here(args, monkeypatch) == 0
        assert table(run / "eval.csv") == table(whole / "intr/runs/dqn/Classic/CartPole-v1" / run.name / "eval.csv")
    dry = snakemake(tmp_path, "--cores", "2", "-n", target)
    assert "Nothing to be done" in dry.stdout + dry.stderr
