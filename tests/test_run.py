"""The run directory contract, checkpoints, load/resume, SIGTERM and bad input, through the real ML."""

from __future__ import annotations

import csv
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import ML
from ML.errors import UserError
from tests.conftest import BIN, run_ml

DIGITS = ["task=classify", "train_steps=60", "evaluate_per_steps=30", "log_per_steps=10", "progress=false"]


def rows(path: Path) -> list[dict[str, str]]:
    with path.open() as f:
        return list(csv.DictReader(f))


def test_launch_writes_the_run_directory(workdir: Path) -> None:
    agent = ML.launch("train_steps=60", task="classify", evaluate_per_steps=30, log_per_steps=10,
                      experiment="E", progress=False)
    run = workdir / "results/E/runs/classify/Classify/Digits/0"
    assert sorted(p.name for p in run.iterdir()) == ["agent.pt", "eval.csv", "run.json", "train.csv"]
    evals = rows(run / "eval.csv")
    assert list(evals[0])[:5] == ["step", "frame", "episode", "time", "score"]
    assert [int(r["step"]) for r in evals] == [0, 30, 60]
    assert int(evals[-1]["frame"]) == 60 * 64  # samples seen
    train = rows(run / "train.csv")
    assert list(train[0])[:5] == ["step", "frame", "episode", "time", "fps"] and "loss" in train[0]
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "complete" and info["final_score"] == pytest.approx(float(evals[-1]["score"]))
    assert info["config"]["train_steps"] == 60 and len(info["config_hash"]) == 16
    assert info["env"]["num_classes"] == 10 and "torch" in info["versions"]
    assert (info["recipe"], info["suite"], info["task"], info["seed"]) == ("classify", "Classify", "Digits", 0)
    # the returned agent predicts, and ML.load_agent gives the same predictions
    x = torch.rand(5, 1, 8, 8)
    loaded = ML.load_agent(str(run))
    agent.eval()
    assert torch.equal(agent(x).argmax(-1), loaded(x).argmax(-1))


def test_load_true_continues_the_same_run(workdir: Path) -> None:
    ML.launch(*DIGITS, "save_per_steps=30")
    run = workdir / "results/Exp/runs/classify/Classify/Digits/0"
    ML.launch(*DIGITS[:1], "train_steps=90", "evaluate_per_steps=30", "progress=false", "load=true")
    assert [int(r["step"]) for r in rows(run / "eval.csv")] == [0, 30, 60, 90]
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "complete" and len(info["resumed"]) == 1


def test_load_by_keywords_and_path(workdir: Path) -> None:
    ML.launch(*DIGITS, experiment="MyExp")
    other = ML.launch(*DIGITS, "train_steps=0", experiment="Other", load="MyExp Digits")
    saved = ML.load_agent("results/MyExp/runs/classify/Classify/Digits/0/agent.pt")
    assert all(torch.equal(a, b) for a, b in zip(other.state_dict().values(), saved.state_dict().values(),
                                                  strict=True))
    with pytest.raises(UserError, match="no agent.pt"):
        ML.launch(*DIGITS, load="NoSuchExperiment")


def test_missing_and_corrupt_checkpoints(workdir: Path) -> None:
    with pytest.raises(UserError, match="no checkpoint"):
        ML.launch(*DIGITS, load=True)
    bad = workdir / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(UserError, match="corrupt"):
        ML.load_agent(str(bad))
    torch.save({"weights": 1}, workdir / "foreign.pt")
    with pytest.raises(UserError, match="not a UnifiedML checkpoint"):
        ML.load_agent(str(workdir / "foreign.pt"))


@pytest.mark.parametrize("args, message", [
    (["task=nope"], "unknown recipe 'nope'"),
    (["task=classify", "trian_steps=3"], "unknown key 'trian_steps'"),
    (["task=classify", "Eyes=NoSuch.Thing"], "cannot resolve 'Eyes=NoSuch.Thing'"),
    (["task=classify", "Dataset=Nope"], "unknown Dataset 'Nope'"),
    (["task=classify", "eyes.deph=3", "Eyes=MLP"], "does not take argument 'deph'"),
    (["task=classify", "load=true"], "no checkpoint"),
    (["task=bad"], "malformed YAML in recipe"),
    (["train_steps=3"], "nothing to train on"),
])
def test_bad_input_is_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    (tmp_path / "bad.yaml").write_text("imports: [classify\n")
    proc = run_ml(*args, cwd=tmp_path, check=False)
    assert proc.returncode == 2
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "results").exists() or not any((tmp_path / "results").rglob("run.json"))


def test_sweep_runs_each_value(tmp_path: Path) -> None:
    run_ml("-m", *DIGITS, "train_steps=10", "evaluate_per_steps=10", "seed=0,1", cwd=tmp_path)
    runs = tmp_path / "results/Exp/runs/classify/Classify/Digits"
    assert sorted(p.name for p in runs.iterdir()) == ["0", "1"]


def test_script_command_line_beats_code(tmp_path: Path) -> None:
    (tmp_path / "Run.py").write_text("import ML\nML.launch(task='classify', train_steps=5, seed=3, progress=False)\n")
    proc = subprocess.run([sys.executable, "Run.py", "seed=4", "evaluate_per_steps=5"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "results/Exp/runs/classify/Classify/Digits/4/run.json").exists()


def _start_then_sigterm(args: list[str], cwd: Path, run: Path) -> str:
    """Start the real ML, let it train a moment, SIGTERM it; returns its output."""
    proc = subprocess.Popen([str(BIN / "ML"), *args], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    first = proc.stdout.readline()  # the first line comes once the run has started training
    time.sleep(1.0)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 143, first + out
    return first + out


def test_sigterm_saves_and_the_same_command_resumes(tmp_path: Path) -> None:
    args = ["task=classify", "train_steps=100000", "evaluate_per_steps=50000", "progress=false"]
    run = tmp_path / "results/Exp/runs/classify/Classify/Digits/0"
    _start_then_sigterm(args, tmp_path, run)
    assert json.loads((run / "run.json").read_text())["status"] == "interrupted"
    first = torch.load(run / "agent.pt", weights_only=True)["run"]["step"]
    assert 0 < first < 100000

    out = _start_then_sigterm(args, tmp_path, run)  # the same command continues the unfinished run
    assert f"resuming {run.relative_to(tmp_path)} from step {first}" in out
    second = torch.load(run / "agent.pt", weights_only=True)["run"]["step"]
    assert second > first
    assert [int(r["step"]) for r in rows(run / "eval.csv")] == [0]  # step 0 evaluated once, not again

    run_ml("task=classify", f"train_steps={second + 20}", "evaluate_per_steps=50000", "progress=false",
           "load=true", cwd=tmp_path)
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "complete" and info["steps"] == second + 20 and len(info["resumed"]) == 2
    assert [int(r["step"]) for r in rows(run / "eval.csv")] == [0, second + 20]
