"""The results tree's layout is written once (ML.layout): the engine writes a run where the pipeline, the
workflow's rules and the run's own identity say it is."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

import ML
from ML import layout
from ML.benchmarking import cells, grid, scores


def test_a_status_file_names_its_run_and_a_run_its_identity(tmp_path: Path) -> None:
    run = layout.run_dir(tmp_path, "E", "dqn", "Classic", "CartPole-v1", 3)
    status = layout.status_path(tmp_path, "E", "dqn", "Classic", "CartPole-v1", 3)
    assert run == tmp_path / "E" / "runs" / "dqn" / "Classic" / "CartPole-v1" / "3"
    assert status == tmp_path / "E" / "cells" / "dqn" / "Classic" / "CartPole-v1" / "3.json"
    assert layout.run_of_status(status) == run
    assert cells.run_json_of(status) == run / "run.json"
    assert layout.identity_of(run) == {"experiment": "E", "recipe": "dqn", "suite": "Classic",
                                       "task": "CartPole-v1", "seed": "3"}
    assert layout.identity_of(tmp_path / "elsewhere") == {}  # a run_dir= of the user's own: no identity
    cell = grid.Cell("dqn", "classic", "Classic", "CartPole-v1", 3)
    assert cell.run_dir(tmp_path, "E") == run


def test_the_engine_writes_where_the_pipeline_looks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "argv", ["ML"])  # ML.launch reads the command line too
    ML.launch("task=random", "env.task=CartPole-v1", "train_steps=20", "evaluate_episodes=1", "seed=2",
              "experiment=E", f"results={tmp_path}", "threads=1", "progress=false")
    run = layout.run_dir(tmp_path, "E", "random", "Classic", "CartPole-v1", 2)
    assert scores.find_runs(tmp_path / "E") == [run / "run.json"]
    assert scores.identity(run / "run.json", {})["task"] == "CartPole-v1"  # read back from the path alone
