"""Tasks trained together (``env.task=[CartPole-v1,Acrobot-v1]``): one DQN, one run directory, both tasks
trained and evaluated, each task's replay apart and sampled in equal shares, an exact resume, bad input refused."""

from __future__ import annotations

import json
import random
import signal
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from ML import cli
from ML.blocks.network import NetworkSettings, NumpyMLP
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
        assert int(row["frame.CartPole-v1"]) + int(row["frame.Acrobot-v1"]) == int(row["frame"])  # each task's
    assert min(int(evals[-1]["frame.CartPole-v1"]), int(evals[-1]["frame.Acrobot-v1"])) > 0
    for entry, actions in zip(info["env"]["tasks"], (2, 3), strict=True):  # each task's own protocol card
        card = entry["protocol"]
        assert card["action_set"] == f"discrete ({actions} actions)" and card["max_episode_frames"] == 500
        assert card["frame_budget"] == int(evals[-1][f"frame.{entry['task']}"]) and card["eval_envs"] == 1
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
    tasks = [{"obs_shape": [4], "num_actions": 2}, {"obs_shape": [6], "num_actions": 3}]
    net = PerTask(NetworkSettings.from_config(config), tasks, 16)
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


def test_the_proportional_schedule_keeps_each_task_near_its_share(tmp_path: Path, whole: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """``together_schedule=proportional``: each episode goes to the task with the fewest frames, so CartPole's
    short episodes and Acrobot's 500-frame ones end within one episode of each other (in turn, CartPole gets far
    fewer); on a run of one task the setting is refused in one line."""
    assert cli.main([*ARGS, "together_schedule=proportional", "save_per_steps=0",
                     f"results={tmp_path / 'results'}"]) == 0
    run = tmp_path / RUN
    last = read_rows(run / "eval.csv")[1][-1]
    frames = [int(last["frame.CartPole-v1"]), int(last["frame.Acrobot-v1"])]
    assert sum(frames) == 900 and abs(frames[0] - frames[1]) <= 500
    in_turn = read_rows(whole / "eval.csv")[1][-1]
    assert int(in_turn["frame.CartPole-v1"]) < frames[0] - 100
    info = json.loads((run / "run.json").read_text())
    assert "fewest frames" in info["env"]["together"]["budget"]
    assert [t["protocol"]["frame_budget"] for t in info["env"]["tasks"]] == frames
    capsys.readouterr()
    assert cli.main(["task=dqn", "together_schedule=proportional", f"results={tmp_path / 'alone'}"]) == 2
    err = capsys.readouterr().err
    assert "together_schedule" in err and len(err.strip().splitlines()) == 1, err


def test_a_sweep_still_runs_each_task_alone() -> None:
    """``-m`` keeps its meaning: ``a,b`` is one run per task; a bracketed list is one value, a together run."""
    assert cli.expand(["-m", "task=dqn", "env.task=CartPole-v1,Acrobot-v1"]) == [
        ["task=dqn", "env.task=CartPole-v1"], ["task=dqn", "env.task=Acrobot-v1"]]
    assert cli.expand(["-m", TASKS, "seed=0,1"]) == [[TASKS, "seed=0"], [TASKS, "seed=1"]]


# ---------------------------------------------------------------- tasks of different kinds (together:, share:)

ACROSS = "results/Exp/runs/digits_cartpole/Together/Digits+CartPole-v1/0"
SPECS = [{"task": "classify", "Dataset": "Digits", "train_steps": 60, "batch_size": 32},
         {"task": "dqn", "env.task": "CartPole-v1", "train_steps": 240, "agent.learn_start": 60, "batch_size": 32,
          "evaluate_episodes": 2}]


def test_a_classifier_and_a_dqn_share_one_trunk_in_one_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The worked recipe (task=digits_cartpole) from code: one run directory, both tasks trained and
    evaluated, the Trunk one module inside both networks, stepped by both optimisers, stored once in agent.pt."""
    import ML

    monkeypatch.setattr(sys, "argv", ["test"])  # ML.launch reads a script's command line

    agent = ML.launch(task="digits_cartpole", together=SPECS, train_steps=300, evaluate_per_steps=150,
                      log_per_steps=50, results=str(tmp_path / "results"), threads=1, progress=False)
    run = tmp_path / ACROSS
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "complete" and info["suite"] == "Together"
    together = info["env"]["together"]
    assert together["shared"] == ["Trunk"] and [t["train_steps"] for t in together["tasks"]] == [60, 240]
    assert [(t["label"], t["recipe"]) for t in together["tasks"]] == [("Digits", "classify"), ("CartPole-v1", "dqn")]
    evals = read_rows(run / "eval.csv")[1]
    assert [int(r["step"]) for r in evals] == [0, 150, 300]
    for row in evals:
        digits, cart = float(row["score.Digits"]), float(row["score.CartPole-v1"])
        assert 0 <= digits <= 1 and cart >= 8 and float(row["score"]) == pytest.approx((digits + cart) / 2, rel=1e-4)
    assert float(evals[-1]["score.Digits"]) > 0.5  # 60 steps: Digits learns through the shared Trunk
    trained = {k for r in read_rows(run / "train.csv")[1] for k, v in r.items() if v not in ("", None)}
    assert {"loss.Digits", "accuracy.Digits", "loss.CartPole-v1", "episode_return.CartPole-v1"} <= trained
    assert (run / "CartPole-v1" / "replay.h5").is_file() and list(run.glob("*.pt")) == [run / "agent.pt"]

    trunk = agent.shared["Trunk"]
    classifier, dqn = agent.tasks
    assert any(m is trunk for m in classifier.net.modules()) and any(m is trunk for m in dqn.q.modules())
    for optim in (classifier.optim, dqn.optim):  # each task's optimiser steps the shared part, moments its own
        stepped = [p for group in optim.param_groups for p in group["params"] if p in optim.state]
        assert any(p is trunk.net[1].weight for p in stepped)
    assert classifier.optim.state[trunk.net[1].weight]["exp_avg"].data_ptr() != \
        dqn.optim.state[trunk.net[1].weight]["exp_avg"].data_ptr()
    module = torch.load(run / "agent.pt", weights_only=True)["agent"]["state"]["module"]
    copies = {k: v for k, v in module.items() if v.shape == trunk.net[1].weight.shape and ".target." not in k
              and torch.equal(v, trunk.net[1].weight.detach())}
    assert len(copies) == 3 and len({v.untyped_storage().data_ptr() for v in copies.values()}) == 1  # once
    loaded = ML.load_agent(str(run))  # rebuilt from agent.pt alone: every task's agent, the Trunk shared again
    assert any(m is loaded.shared["Trunk"] for m in loaded.tasks[1].q.modules())
    x = torch.zeros(3, 1, 8, 8)
    torch.testing.assert_close(loaded.tasks[0](x), classifier(x))


def test_steps_go_to_the_task_furthest_behind_its_budget() -> None:
    from ML.drivers.across import turn

    def order(budgets: list[int]) -> list[int]:
        steps, out = [0] * len(budgets), []
        for _ in range(sum(budgets)):
            out.append(turn(budgets, steps))
            steps[out[-1]] += 1
        return out

    assert order([3, 3]) == [0, 1, 0, 1, 0, 1]  # equal budgets: round-robin by step
    assert order([2, 6]) == [0, 1, 1, 1, 0, 1, 1, 1]  # in proportion
    assert order([1, 2, 1]) == [0, 1, 2, 1]


@pytest.mark.parametrize("args, expected", [
    (["share=[Foo]"], "share: Foo is not a part"),
    (["share=[Model]"], "Model cannot be shared across tasks"),
    (["share=[Eyes]", "Trunk=null", "trunk={}"], "share: [Eyes] needs every task's observations of one shape"),
    (["together=[{task: classify, train_steps: 5}, {task: ppo, train_steps: 5}]", "train_steps=10"],
     "share: Trunk is not built by together[1]'s agent PPOAgent"),
    (["together=[{task: classify, train_steps: 5}, {task: dqn, train_steps: 6}]", "train_steps=10"],
     "add up to the run's train_steps=10"),
    (["together=[{task: classify}]"], "give two or more task specs"),
    (["together=[{task: classify, train_steps: 5, vlog: true}, {task: dqn, train_steps: 5}]", "train_steps=10"],
     "vlog=true would be ignored: no part of this task (the supervised driver"),
    (["together=[{task: classify, seed: 3}, {task: dqn}]"], "together[0] sets seed, a setting of the whole run"),
    (["Env=Classic"], "Env=Classic is set for the whole run, but with together: each task has its own"),
])
def test_bad_together_specs_are_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                args: list[str], expected: str) -> None:
    """Refused in ``ML``'s own entry point (in this process: its exit code and stderr as the command's)."""
    assert cli.main(["task=digits_cartpole", *args, f"results={tmp_path / 'results'}"]) == 2
    err = capsys.readouterr().err
    assert expected in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "results").exists()


def test_a_task_spec_may_set_none_of_the_run_s_settings() -> None:
    """The run's settings come from the classes that own them (``per_run``): every field of ``RunSettings`` but
    the recipe and budget, of ``AcrossSettings`` and ``AccelSettings``' process-wide ones is refused in a spec;
    a task's own settings (its budget, batch, learning rate, compile, workers, replay) pass."""
    from ML.accelerate import AccelSettings
    from ML.drivers.settings import AcrossSettings
    from ML.errors import UserError
    from ML.hyperparams.together import RUN_KEYS, entries, per_run
    from ML.runsettings import RunSettings

    run_level = ((RunSettings.claims() - {"task", "train_steps"}) | AcrossSettings.claims()
                 | {"accelerate", "device", "threads", "world_size"})
    assert per_run() == run_level and set(RUN_KEYS) <= run_level
    assert {"seed", "experiment", "save_per_steps", "share_width", "trust_code"} <= run_level  # (a few by name)
    assert "compile" in AccelSettings.claims() and "compile" not in run_level
    for key in sorted(run_level):
        with pytest.raises(UserError, match=rf"together\[1\] sets {key}, a setting of the whole run"):
            entries({"together": [{"task": "classify"}, {"task": "dqn", key: 1}]})
    for key in ("train_steps", "batch_size", "lr", "compile", "workers", "lr_scaling", "replay.capacity"):
        assert entries({"together": [{"task": "classify"}, {"task": "dqn", key: 1}]})[1][key] == 1


def test_a_bad_share_from_the_command_line_exits_2(tmp_path: Path) -> None:
    proc = run_ml("task=digits_cartpole", "share=[Pool]", cwd=tmp_path, check=False)
    assert proc.returncode == 2 and proc.stderr.startswith("ML: error: share: Pool cannot be shared"), proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "results").exists()
