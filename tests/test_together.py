"""Tasks trained together (``env.task=[CartPole-v1,Acrobot-v1]``): one DQN, one run directory, both tasks
trained and evaluated, each task's replay apart and sampled in equal shares, an exact resume, bad input refused."""

from __future__ import annotations

import json
import random
import signal
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from ML import cli
from ML.blocks.network import NumpyMLP
from ML.blocks.together import ABSENT, PerTask
from ML.hyperparams import resolve_config
from ML.logs import read_rows
from ML.replay import Replay
from ML.replay_streams import Streams
from tests.conftest import run_ml
from tests.test_resume import assert_same_run, kill_after_checkpoint, table

TASKS = "env.task=[CartPole-v1,Acrobot-v1]"
ARGS = ["task=dqn", TASKS, "train_steps=900", "evaluate_per_steps=300", "evaluate_episodes=2", "log_per_steps=100",
        "agent.learn_start=150", "batch_size=32", "save_per_steps=150", "threads=1", "progress=false"]
RUN = "results/Exp/runs/dqn/Classic/CartPole-v1+Acrobot-v1/0"


@pytest.fixture(scope="module")
def whole(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An uninterrupted together run, in this process."""
    cwd = tmp_path_factory.mktemp("together")
    assert cli.main([*ARGS, f"results={cwd / 'results'}"]) == 0
    return cwd / RUN


def test_one_run_trains_and_evaluates_both_tasks(whole: Path) -> None:
    info = json.loads((whole / "run.json").read_text())
    assert info["status"] == "complete" and info["task"] == "CartPole-v1+Acrobot-v1"
    assert [t["task"] for t in info["env"]["tasks"]] == ["CartPole-v1", "Acrobot-v1"]
    assert [t["num_actions"] for t in info["env"]["tasks"]] == [2, 3]
    assert "Trunk" in info["env"]["together"]["shared"] and info["env"]["together"]["replay_share"] == "equal"
    evals = read_rows(whole / "eval.csv")[1]
    assert [int(r["step"]) for r in evals] == [0, 300, 600, 900]
    for row in evals:  # every evaluation scores each task; score is their mean
        cart, acro = float(row["score.CartPole-v1"]), float(row["score.Acrobot-v1"])
        assert cart >= 8 and -500 <= acro < 0
        assert float(row["score"]) == pytest.approx((cart + acro) / 2)
    trained = {k for r in read_rows(whole / "train.csv")[1] for k, v in r.items() if v not in ("", None)}
    assert {"episode_return.CartPole-v1", "episode_return.Acrobot-v1", "loss"} <= trained
    # one replay per task, each holding only its own task's (tagged) observations, both filled
    for i, name in enumerate(("replay.h5", "replay.env1.h5")):
        with h5py.File(whole / name) as f:
            tags = f["obs"][()][:, 0]
            assert len(tags) > 20 and set(np.unique(tags)) == {i}
    assert list(whole.glob("*.pt")) == [whole / "agent.pt"]


def test_replays_give_equal_shares_of_every_batch() -> None:
    """However unequal the tasks' replays, each gives half of a batch (sampling in proportion would not)."""
    streams = Streams(2, None, 5000, (3,), np.float32, (), np.int64, seed=0, equal=True)
    for i, length in enumerate((2000, 100)):
        replay: Replay = streams[i]
        replay.start(np.array([i, 0, 0], np.float32))
        for t in range(length):
            replay.add(0, 1.0, np.array([i, t, 0], np.float32), t == length - 1, False)
    for _ in range(5):
        tags = streams.sample(33, 1, 0.99)["obs"][:, 0]
        assert abs(int((tags == 0).sum()) - int((tags == 1).sum())) <= 1


def test_per_task_adapters_and_heads_around_one_body() -> None:
    config = resolve_config((), {"task": "dqn"})
    net = PerTask(config, [{"obs_shape": [4], "num_actions": 2}, {"obs_shape": [6], "num_actions": 3}], 16)
    x = torch.zeros(4, 7)
    x[:2, 1:5], x[2:, 0], x[2:, 1:] = torch.randn(2, 4), 1, torch.randn(2, 6)
    out = net(x)
    assert out.shape == (4, 3) and (out[:2, 2] == ABSENT).all() and (out[2:] > ABSENT).all()
    for i, (row, dim, actions) in enumerate([(0, 4, 2), (2, 6, 3)]):  # acting: a task's path in numpy, alike
        fast = NumpyMLP.of(net.path(i))
        assert fast is not None
        np.testing.assert_allclose(fast(x[row, 1:1 + dim].numpy()), out[row, :actions].detach().numpy(), rtol=1e-5,
                                   atol=1e-6)
    out[:2, :2].sum().backward()  # a CartPole loss trains its adapter, the body and its head, no Acrobot part
    assert net.adapters[0][0].weight.grad.abs().sum() > 0 and net.heads[0][1].weight.grad is not None
    for part in (net.adapters[1], net.heads[1]):
        assert all(p.grad is None or not p.grad.any() for p in part.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in net.body.parameters())


def test_sigkilled_together_run_resumes_exactly(tmp_path: Path, whole: Path) -> None:
    run = tmp_path / RUN
    kill_after_checkpoint(tmp_path, ARGS, run, signal.SIGKILL, 300, random.Random(1))
    assert "resuming" in run_ml(*ARGS, cwd=tmp_path).stdout
    assert_same_run(run, whole)
    with h5py.File(run / "replay.env1.h5") as a, h5py.File(whole / "replay.env1.h5") as b:
        for name in ("obs", "action", "reward", "episodes"):
            np.testing.assert_array_equal(a[name][()], b[name][()])
    assert table(run / "eval.csv")[-1]["score.Acrobot-v1"] == table(whole / "eval.csv")[-1]["score.Acrobot-v1"]


@pytest.mark.parametrize("task, expected", [
    ("[CartPole-v1,Pendulum-v1]", "Pendulum-v1 has continuous actions"),
    ("[CartPole-v1,CartPole-v1]", "two or more different task names"),
    ("[CartPole-v1]", "two or more different task names"),
])
def test_bad_task_lists_are_one_line_exit_2(tmp_path: Path, task: str, expected: str) -> None:
    proc = run_ml("task=dqn", f"env.task={task}", "train_steps=10", f"results={tmp_path / 'results'}",
                  cwd=tmp_path, check=False)
    assert proc.returncode == 2 and expected in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, \
        proc.stderr
    assert not (tmp_path / "results").exists()


def test_a_sweep_still_runs_each_task_alone() -> None:
    """``-m`` keeps its meaning: ``a,b`` is one run per task; a bracketed list is one value, a together run."""
    assert cli.expand(["-m", "task=dqn", "env.task=CartPole-v1,Acrobot-v1"]) == [
        ["task=dqn", "env.task=CartPole-v1"], ["task=dqn", "env.task=Acrobot-v1"]]
    assert cli.expand(["-m", TASKS, "seed=0,1"]) == [[TASKS, "seed=0"], [TASKS, "seed=1"]]
