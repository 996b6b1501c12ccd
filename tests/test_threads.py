"""The thread count a run picks without ``threads=`` (ML.threads): one for small MLPs, the free cores for
convolutional or large agents, ``threads=`` always winning; recorded in run.json, the caller's count kept."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

import ML
from ML import threads
from ML.accelerate import AccelSettings

AUTO = AccelSettings.from_config({})  # threads=null: chosen


def mlp(*widths: int) -> nn.Module:
    return nn.Sequential(*(nn.Linear(a, b) for a, b in zip(widths, widths[1:], strict=False)))


def test_small_mlp_gets_one_thread_whatever_the_machine():
    dqn_sized = mlp(4, 64, 64, 2)  # DQN's CartPole network at batch 128: 0.6M multiply-adds an update
    choice = threads.choose(AUTO, dqn_sized, 128, cores=16, busy=0)
    assert choice["threads"] == 1 and choice["why"].startswith("auto: MLP agent")


def test_large_or_convolutional_agents_get_the_free_cores():
    digits_sized = mlp(64, 256, 256, 10)  # the classify recipe's MLP at batch 64: 5.4M
    assert threads.choose(AUTO, digits_sized, 64, cores=2, busy=0)["threads"] == 2
    conv = nn.Sequential(nn.Conv2d(3, 8, 3), nn.Flatten())
    choice = threads.choose(AUTO, conv, 1, cores=2, busy=0)
    assert choice["threads"] == min(2, torch.get_num_threads()) and "convolutional" in choice["why"]
    # a busy machine: only the cores nobody else is running on, never fewer than one
    assert threads.choose(AUTO, conv, 64, cores=8, busy=5)["threads"] == min(3, torch.get_num_threads())
    assert threads.choose(AUTO, conv, 64, cores=2, busy=6)["threads"] == 1


def test_a_resumed_run_keeps_its_count():
    before = {"threads": 2, "why": "auto: convolutional agent; 2 of 2 cores free"}
    choice = threads.choose(AUTO, mlp(4, 2), 64, before, cores=2, busy=5)
    assert choice["threads"] == 2 and choice["why"].startswith("resumed: kept")
    assert threads.choose(AccelSettings.from_config({"threads": 1}), mlp(4, 2), 64, before)["threads"] == 1


def test_given_threads_win():
    assert threads.choose(AccelSettings.from_config({"threads": 3}), mlp(4, 2), 64, cores=8, busy=0) == {
        "threads": 3, "why": "threads= given"}


def test_busy_cores_reads_the_machine():
    assert 0 <= threads.busy_cores() < 10_000


def test_a_bare_run_records_its_choice_and_restores_the_callers(workdir: Path):
    tmp_path = workdir
    before = torch.get_num_threads()
    ML.launch(task="dqn", train_steps=20, evaluate_per_steps=0, evaluate_episodes=1, progress=False,
              save=False, results=str(tmp_path))
    record = json.loads(next(tmp_path.glob("*/runs/dqn/*/*/0/run.json")).read_text())["threads"]
    assert record == {"threads": 1, "why": record["why"]} and record["why"].startswith("auto: MLP agent")
    assert torch.get_num_threads() == before
