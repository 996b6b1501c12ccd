"""A run written before a setting was added (its stored config lacks the key, its hash is of the rest) is of
the same config to this engine while the new key holds its default: the same command resumes it exactly, or
leaves it as it is when complete. A changed value, or a changed default, is still another config."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from ML.runinfo import config_hash, same_config
from ML.settings import defaults
from tests.conftest import run_ml
from tests.test_interrupts import ml_here
from tests.test_resume import assert_same_run

NEW = ("together", "share", "share_width", "together_schedule")  # the settings the last release added
COMMAND = ["task=classify", "train_steps=300", "evaluate_per_steps=100", "log_per_steps=10", "save_per_steps=50",
           "batch_size=32", "threads=1", "progress=false"]
WHERE = "Exp/runs/classify/Classify/Digits/0"


def as_before(run: Path, drop: tuple[str, ...] = NEW, **old: Any) -> None:
    """Rewrite run.json and agent.pt as an engine without the settings ``drop`` (and whose defaults were ``old``)
    wrote them: its config, and that config's hash."""
    info = json.loads((run / "run.json").read_text())
    payload = torch.load(run / "agent.pt", weights_only=True)
    assert payload["agent"]["config"] == info["config"]  # both hold the whole config
    config = {**{k: v for k, v in info["config"].items() if k not in drop}, **old}
    assert config_hash(config) != info["config_hash"]  # what the engine before this change refused
    info.update(config=config, config_hash=config_hash(config))
    (run / "run.json").write_text(json.dumps(info))
    payload["agent"]["config"] = config
    payload["run"]["config_hash"] = config_hash(config)
    torch.save(payload, run / "agent.pt")


def files(run: Path) -> dict[str, bytes]:
    return {str(p.relative_to(run)): p.read_bytes() for p in sorted(run.rglob("*")) if p.is_file()}


def test_a_run_killed_before_a_setting_was_added_resumes_exactly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    assert ml_here([*COMMAND, f"results={tmp_path / 'whole'}"], monkeypatch) == 0
    args = [*COMMAND, f"results={tmp_path / 'results'}"]
    run = tmp_path / "results" / WHERE
    assert run_ml(*args, cwd=tmp_path, check=False, ML_STOP_AT="train_row@12:KILL").returncode == -9  # step 120
    as_before(run)
    capsys.readouterr()
    assert ml_here(args, monkeypatch) == 0
    assert f"resuming {run} from step 100" in capsys.readouterr().out  # not started over
    assert_same_run(run, tmp_path / "whole" / WHERE)
    info = json.loads((run / "run.json").read_text())
    assert info["resume_exact"] is True and len(info["resumed"]) == 1
    assert info["config_hash"] == config_hash(info["config"]) and set(NEW) <= set(info["config"])  # this engine's


def test_a_complete_run_from_before_a_setting_was_added_is_left_as_it_is(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch,
                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    args = [*COMMAND, "train_steps=50", f"results={tmp_path / 'results'}"]
    assert ml_here(args, monkeypatch) == 0
    run = tmp_path / "results" / WHERE
    as_before(run)
    before = files(run)
    capsys.readouterr()
    assert ml_here(args, monkeypatch) == 0
    assert "is complete with this config: nothing to train" in capsys.readouterr().out
    assert files(run) == before
    # a value the record does not hold is another config, and refused with nothing changed
    proc = run_ml(*args, "lr=0.01", cwd=tmp_path, check=False)
    assert proc.returncode == 2 and "holds a complete run of another config" in proc.stderr
    assert files(run) == before
    # so is a changed default: the record holds the value its engine had (evaluate_envs' default was 8)
    as_before(run, evaluate_envs=8)
    before = files(run)
    proc = run_ml(*args, cwd=tmp_path, check=False)
    assert proc.returncode == 2 and "holds a complete run of another config" in proc.stderr
    assert files(run) == before


def test_only_a_missing_key_at_its_default_is_left_out_of_the_hash() -> None:
    config = {**defaults(), "task": "classify", "lr": 0.01}
    recorded = {k: v for k, v in config.items() if k not in NEW}
    old = config_hash(recorded)
    assert config_hash(config) != old and config_hash(config, recorded) == old
    assert same_config(config, old, recorded) and not same_config(config, old, None)
    assert not same_config(config, "", recorded)
    for key, value in [("share_width", 32), ("together_schedule", "proportional"), ("lr", 0.1)]:
        assert not same_config({**config, key: value}, old, recorded), key  # a value set, not a default
    # a section's key added since (replay.*), at its default and not
    replay = {k: v for k, v in config["replay"].items() if k != "capacity"}
    recorded = {**config, "replay": replay}
    old = config_hash(recorded)
    assert same_config(config, old, recorded)
    assert not same_config({**config, "replay": {**config["replay"], "capacity": 10}}, old, recorded)
    # and a key the record holds counts as it always did: a changed default is another config
    assert not same_config(config, config_hash({**config, "batch_size": 32}), {**config, "batch_size": 32})
