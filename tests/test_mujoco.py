"""The gymnasium MuJoCo suite: real envs (mujoco 3.17 under gymnasium 1.4), PPO and SAC on them at tiny
budgets, headless video through EGL, the suite and its protocol."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from ML.envs.mujoco import TASKS, MuJoCo
from ML.errors import UserError
from tests.conftest import run_ml


@pytest.mark.parametrize("task", TASKS)
def test_every_task_steps_under_the_pinned_mujoco(task: str, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)  # mujoco writes its warnings (a deprecated attribute in a model) to MUJOCO_LOG.TXT
    env = MuJoCo(task)  # no version: v5
    try:
        spec = env.task_spec
        assert spec.suite == "MuJoCo" and spec.task == f"{task}-v5" and spec.info["mujoco_version"] == "v5"
        assert not spec.discrete and spec.action_low < 0 < spec.action_high
        obs, _ = env.reset(seed=0)
        again, _ = env.reset(seed=0)
        assert obs.dtype == np.float32 and obs.shape == spec.obs_shape and np.array_equal(obs, again)
        obs, reward, terminated, truncated, _ = env.step(np.zeros(spec.action_shape, np.float32))
        assert np.isfinite(obs).all() and np.isfinite(reward)
    finally:
        env.close()


def test_a_task_outside_the_suite_is_refused_in_one_line() -> None:
    with pytest.raises(UserError, match="unknown MuJoCo task 'Hopper-v3'.*Hopper-v5"):
        MuJoCo("Hopper-v3")  # gym v3 needs mujoco-py: not offered
    with pytest.raises(UserError, match="unknown MuJoCo task 'Pendulum-v1'"):
        MuJoCo("Pendulum-v1")


def test_the_suites_follow_the_mujoco_protocol() -> None:
    from ML.benchmarking import grid, protocols

    one, three = grid.load_suite("mujoco"), grid.load_suite("mujoco_3m")
    assert one.env == three.env == "MuJoCo" and len(one.tasks) == 9 and one.tasks == three.tasks
    protocol = protocols.load("mujoco")
    assert protocol.task_args("Hopper-v5", one.difficulty)["train_steps"] == 1_000_000
    assert protocol.task_args("Hopper-v5", three.difficulty)["train_steps"] == 3_000_000
    assert protocol.task_args("Hopper-v5", "1M")["evaluate_episodes"] == 10


@pytest.mark.parametrize("recipe, args", [
    ("ppo_mujoco", ["agent.num_envs=4", "agent.n_steps=32", "agent.n_epochs=2", "train_steps=256"]),
    ("sac_mujoco", ["agent.learn_start=100", "agent.hidden_dim=32", "batch_size=32", "train_steps=200"]),
])
def test_ppo_and_sac_train_on_hopper(tmp_path: Path, recipe: str, args: list[str]) -> None:
    run_ml(f"task={recipe}", *args, "evaluate_per_steps=0", "evaluate_episodes=2", "log_per_steps=50",
           "threads=1", "progress=false", cwd=tmp_path)
    run = tmp_path / f"results/Exp/runs/{recipe}/MuJoCo/Hopper-v5/0"
    rows = list(csv.DictReader((run / "eval.csv").open()))
    assert [r["step"] for r in rows] == ["0", args[-1].split("=")[1]] and all(float(r["score"]) > 0 for r in rows)
    train = list(csv.DictReader((run / "train.csv").open()))
    assert any(r.get("value_loss") or r.get("critic_loss") for r in train)  # it learned


def test_vlog_films_hopper_headless(tmp_path: Path) -> None:
    run_ml("task=sac_mujoco", "train_steps=0", "evaluate_episodes=1", "vlog=true", "agent.hidden_dim=32",
           "env.width=96", "env.height=96",
           "threads=1", "progress=false", cwd=tmp_path, MUJOCO_GL="egl")
    video = tmp_path / "results/Exp/runs/sac_mujoco/MuJoCo/Hopper-v5/0/videos/step_0.mp4"
    assert video.stat().st_size > 1000
