"""env.num_envs=N: Atari training from N games in ale-py's AtariVectorEnv (real ROMs, real HDF5, real ML)."""

from __future__ import annotations

import json
import random
import signal
from pathlib import Path

import h5py
import numpy as np
import pytest

from ML.envs.atari import Atari
from ML.envs.atari_vector import AtariVector
from ML.replay import Replay
from tests.conftest import run_ml
from tests.test_resume import kill_after_checkpoint, table

TINY = ("env.max_episode_frames=400", "agent.learn_start=100", "replay.capacity=2000", "evaluate_per_steps=300",
        "evaluate_episodes=1", "log_per_steps=50", "device=cpu", "threads=1")


def test_vector_env_plays_as_the_single_env():
    """Same game, settings and actions: the same observations, rewards and ending, then an autoreset."""
    single = Atari("pong", noop_max=0, max_episode_frames=400)
    vector = AtariVector(single, 2)
    obs, batch = single.reset(seed=0)[0], vector.reset(0)
    assert batch.shape == (2, 4, 84, 84) and (batch == obs).all()
    actions = np.random.default_rng(0).integers(6, size=200)
    steps = 0
    for a in actions:
        steps += 1
        obs, reward, terminated, truncated, _ = single.step(int(a))
        got = vector.step([a, a])
        assert not got.restarted.any() and (got.obs == obs).all() and (got.reward == reward).all()
        assert (got.terminated == terminated).all() and (got.truncated == truncated).all()
        if truncated:
            break
    assert steps == 100  # 400 frames at frame skip 4
    got = vector.step([0, 0])  # the step after the end: each game's reset
    assert got.restarted.all() and (got.obs == single.reset(seed=0)[0]).all()
    vector.close()


@pytest.mark.parametrize("max_frames", [108_000, 116])
def test_vector_life_loss_gives_the_single_envs_replay(tmp_path: Path, max_frames: int):
    """env.terminal_on_life_loss: the same actions give the same replay.h5 (a terminal at every lost life, the
    game playing on from a NOOP, a reset at game over) from one game and from each of the vector's games.
    At a 116-frame cap the first life is lost at step 28 (frame 112) and the NOOP after it ends the game by
    the cap: the single env resets in its ``reset``, the vector skips that step and restarts the game."""
    single = Atari("breakout", noop_max=0, terminal_on_life_loss=True, max_episode_frames=max_frames)
    vector = AtariVector(single, 2)
    shape = single.task_spec.obs_shape
    replays = [Replay(tmp_path / f"{name}.h5", 1000, shape, np.uint8, (), np.int64, frame_stack=4)
               for name in ("single", "game0", "game1")]
    replays[0].start(single.reset(seed=0)[0])
    for i, obs in enumerate(vector.reset(0)):
        replays[1 + i].start(obs)
    ends = {"life": 0, "game": 0}
    skipped = 0
    for a in np.random.default_rng(0).integers(4, size=260):
        obs, reward, terminated, truncated, info = single.step(int(a))
        replays[0].add(a, reward, obs, terminated, truncated)
        if terminated or truncated:
            ends["life" if info.get("life_loss") else "game"] += 1
            replays[0].start(single.reset(seed=0)[0])
        got = vector.step([a, a])
        while got.restarted.any() or got.skipped.any():  # the vector's reset steps (their actions ignored)
            skipped += int(got.skipped.any())
            for i in np.flatnonzero(got.restarted):
                replays[1 + i].start(got.obs[i])
            got = vector.step([a, a])
        for i in range(2):
            replays[1 + i].add(got.actions[i], got.reward[i], got.obs[i], got.terminated[i], got.truncated[i])
    if max_frames == 116:
        assert skipped >= 1 and ends["life"] >= 1  # the NOOP after a lost life ended the game at least once
    else:
        assert ends == {"life": 4 + 1, "game": 1} and skipped == 0  # a game over at step 184, then a life lost
    for replay in replays:
        replay.close()
    vector.close()
    with h5py.File(tmp_path / "single.h5", "r") as one:
        for name in ("game0", "game1"):
            with h5py.File(tmp_path / f"{name}.h5", "r") as other:
                for column in ("obs", "action", "reward", "terminal", "episodes"):
                    np.testing.assert_array_equal(other[column][()], one[column][()])


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


def test_num_envs_2_trains_atari100k_with_life_loss_terminals(tmp_path: Path):
    """atari100k's agent with a terminal at every lost life (and gymnasium's episode starts, which the vector env
    plays): each game's replay holds its lives as episodes."""
    run_dir = tmp_path / "run"
    run_ml("task=atari100k", "env.game=breakout", "env.num_envs=2", "+env.starts=gymnasium", "train_steps=500",
           "evaluate_episodes_final=1",
           f"run_dir={run_dir}", *TINY, "env.max_episode_frames=4000", "agent.learn_start=450", cwd=tmp_path)
    returns = [r for r in table(run_dir / "train.csv") if r.get("episode_return")]
    assert len(returns) >= 4  # a life lasts some 30 steps: several per game in 250 steps each
    for name in ("replay.h5", "replay.env1.h5"):
        with h5py.File(run_dir / name, "r") as f:
            endings = f["episodes"][:, 2].tolist()  # 1: terminated, a life lost; 0: running at the end
            assert endings.count(1) >= 2 and set(endings[:-1]) == {1}
            assert f["terminal"][()].sum() == endings.count(1)


def test_num_envs_refuses_what_the_vector_env_plays_differently(tmp_path: Path):
    run_dir = tmp_path / "run"
    proc = run_ml("task=dqn_atari", "env.num_envs=2", "env.grayscale=false", "train_steps=10", f"run_dir={run_dir}",
                  cwd=tmp_path, check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "env.num_envs=2" in proc.stderr and "grayscale" in proc.stderr and len(proc.stderr.splitlines()) <= 3
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
