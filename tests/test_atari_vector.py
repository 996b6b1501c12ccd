"""env.num_envs=N: Atari training from N games in ale-py's AtariVectorEnv (real ROMs, real HDF5, real ML)."""

from __future__ import annotations

import json
import random
import signal
from pathlib import Path

import h5py
import numpy as np

from ML.envs.atari import Atari
from ML.envs.atari_vector import AtariVector
from tests.conftest import run_ml
from tests.test_resume import kill_after_checkpoint, table

TINY = ("env.max_episode_frames=400", "agent.learn_start=100", "replay.capacity=2000", "evaluate_per_steps=300",
        "evaluate_episodes=1", "log_per_steps=50", "device=cpu", "threads=1")


def test_vector_env_plays_as_the_single_env():
    """Same game, settings and actions: the same observations, rewards and ending, then an autoreset."""
    single = Atari("pong", noop_max=0, max_episode_frames=400)
    vector = AtariVector(single, 2, seed=0)
    obs, batch = single.reset(seed=0)[0], vector.reset(0)
    assert batch.shape == (2, 4, 84, 84) and (batch == obs).all()
    actions = np.random.default_rng(0).integers(6, size=200)
    steps = 0
    for a in actions:
        steps += 1
        obs, reward, terminated, truncated, _ = single.step(int(a))
        batch, rewards, terms, truncs, restarted = vector.step([a, a])
        assert not restarted.any() and (batch == obs).all() and (rewards == reward).all()
        assert (terms == terminated).all() and (truncs == truncated).all()
        if truncated:
            break
    assert steps == 100  # 400 frames at frame skip 4
    batch, _, _, _, restarted = vector.step([0, 0])  # the step after the end: each game's reset
    assert restarted.all() and (batch == single.reset(seed=0)[0]).all()
    vector.close()


def test_num_envs_2_trains_pong_end_to_end(tmp_path: Path):
    run_dir = tmp_path / "run"
    run_ml("task=dqn_atari", "env.num_envs=2", "train_steps=300", f"run_dir={run_dir}", *TINY, cwd=tmp_path)
    rows = (run_dir / "eval.csv").read_text().splitlines()
    assert rows[0].startswith("step,frame,") and [r.split(",")[:2] for r in rows[1:]] == [["0", "0"],
                                                                                        ["300", "1200"]]
    train = (run_dir / "train.csv").read_text().splitlines()
    assert len(train) == 7 and any(r.split(",")[5] for r in train[1:])  # losses once learning starts
    for name in ("replay.h5", "replay.env1.h5"):  # one replay per game: 150 steps each, an episode of 100
        with h5py.File(run_dir / name, "r") as f:
            assert f["episodes"][0].tolist()[1:] == [101, 2] and f["obs"].shape[1:] == (1, 84, 84)
    info = json.loads((run_dir / "run.json").read_text())
    assert info["env"]["num_envs"] == 2 and info["env"]["frame_skip"] == 4 and info["env"]["noop_max"] == 30
    assert info["resume_exact"] is True


def test_num_envs_refuses_what_the_vector_env_plays_differently(tmp_path: Path):
    run_dir = tmp_path / "run"
    proc = run_ml("task=atari100k", "env.num_envs=2", "train_steps=10", f"run_dir={run_dir}", cwd=tmp_path,
                  check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "env.num_envs=2" in proc.stderr and "terminal_on_life_loss" in proc.stderr
    assert not run_dir.exists()
    proc = run_ml("task=dqn_atari", "env.num_envs=0", f"run_dir={run_dir}", cwd=tmp_path, check=False)
    assert proc.returncode == 2 and "num_envs" in proc.stderr and not run_dir.exists()


def test_num_envs_2_sigkilled_run_resumes_exactly(tmp_path: Path):
    """Killed after a checkpoint, the same command ends with an uninterrupted run's logs and replays."""
    args = ["task=dqn_atari", "env.num_envs=2", "train_steps=450", "save_per_steps=150", *TINY, "progress=false"]
    whole, run = tmp_path / "whole", tmp_path / "run"
    run_ml(*args, f"run_dir={whole}", cwd=tmp_path)
    kill_after_checkpoint(tmp_path, [*args, f"run_dir={run}"], run, signal.SIGKILL, 150, random.Random(0))
    assert len(table(run / "train.csv")) < len(table(whole / "train.csv"))
    assert "resuming" in run_ml(*args, f"run_dir={run}", cwd=tmp_path).stdout
    for name in ("eval.csv", "train.csv"):
        assert table(run / name) == table(whole / name)
    for name in ("replay.h5", "replay.env1.h5"):
        with h5py.File(run / name, "r") as a, h5py.File(whole / name, "r") as b:
            for column in ("obs", "action", "reward", "episodes"):
                np.testing.assert_array_equal(a[column][()], b[column][()])
