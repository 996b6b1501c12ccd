"""Verified resume: a run killed at any moment and started again with the same command ends exactly as an
uninterrupted run (CPU, same seed): same eval.csv, same train.csv rows, same replay — for every task kind."""

from __future__ import annotations

import csv
import json
import os
import random
import signal
import subprocess
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from ML.logs import read_rows
from tests.conftest import BIN, run_ml

COMMON = ["threads=1", "progress=false"]
CASES = {  # task kind: (command, run directory, the checkpoint step after which a kill may land)
    "classify": (["task=classify", "train_steps=600", "evaluate_per_steps=300", "log_per_steps=10",
                  "save_per_steps=50", "batch_size=32", "Scheduler=CosineAnnealingLR", "Aug=RandomCropFlip",
                  "+aug.padding=1"], "results/Exp/runs/classify/Classify/Digits/0", 100),
    "classify-workers": (["task=classify", "train_steps=600", "evaluate_per_steps=300", "log_per_steps=10",
                          "save_per_steps=50", "batch_size=32", "accelerate=true", "device=cpu", "workers=1"],
                         "results/Exp/runs/classify/Classify/Digits/0", 100),
    "gan": (["task=dcgan", "train_steps=240", "evaluate_per_steps=120", "log_per_steps=20", "save_per_steps=40",
             "batch_size=16", "agent.eval_samples=64", "agent.grid=4", "model.channels=8",
             "discriminator.channels=8"], "results/Exp/runs/dcgan/Generate/Digits/0", 40),
    "dqn": (["task=dqn", "train_steps=1200", "evaluate_per_steps=400", "evaluate_episodes=2",
             "log_per_steps=100", "agent.learn_start=200", "batch_size=32", "save_per_steps=200"],
            "results/Exp/runs/dqn/Classic/CartPole-v1/0", 400),
    "together": (["task=dqn", "env.task=[CartPole-v1,Acrobot-v1]", "train_steps=1200", "evaluate_per_steps=400",
                  "evaluate_episodes=2", "log_per_steps=100", "agent.learn_start=200", "batch_size=32",
                  "save_per_steps=200"], "results/Exp/runs/dqn/Classic/CartPole-v1+Acrobot-v1/0", 400),
    "together-across": (["task=digits_cartpole", "train_steps=1000", "evaluate_per_steps=400",
                         "log_per_steps=100", "save_per_steps=200", "together=[{task: classify, Dataset: Digits, "
                         "train_steps: 200, batch_size: 32}, {task: dqn, env.task: CartPole-v1, train_steps: 800, "
                         "agent.learn_start: 200, batch_size: 32, evaluate_episodes: 2}]"],
                        "results/Exp/runs/digits_cartpole/Together/Digits+CartPole-v1/0", 400),
    "drqv2-states": (["task=drqv2_states", "Env=Classic", "env={task: Pendulum-v1}", "train_steps=600",
                      "evaluate_per_steps=0", "evaluate_episodes=1", "log_per_steps=50", "save_per_steps=100",
                      "agent.learn_start=100", "agent.num_expl_steps=100", "agent.hidden_dim=32",
                      "agent.feature_dim=16", "batch_size=32", "device=cpu"],
                     "results/Exp/runs/drqv2_states/Classic/Pendulum-v1/0", 200),
    "ppo": (["task=ppo", "train_steps=3200", "evaluate_per_steps=1600", "evaluate_episodes=2", "log_per_steps=100",
             "save_per_steps=200", "agent.n_steps=16", "agent.n_epochs=4", "batch_size=64"],
            "results/Exp/runs/ppo/Classic/CartPole-v1/0", 400),  # checkpoints land mid-rollout (every 128 steps)
    "sac": (["task=sac", "train_steps=600", "evaluate_per_steps=0", "evaluate_episodes=1", "log_per_steps=50",
             "save_per_steps=100", "agent.learn_start=100", "agent.hidden_dim=32", "batch_size=32"],
            "results/Exp/runs/sac/Classic/Pendulum-v1/0", 200),
    "drqv2-pixels": (["task=drqv2", "env.task=cartpole_balance", "env.size=24", "env.fast_render=true",
                      "env.action_repeat=8", "train_steps=160", "evaluate_per_steps=0", "evaluate_episodes=1",
                      "log_per_steps=20", "save_per_steps=40", "agent.learn_start=40", "agent.num_expl_steps=40",
                      "agent.hidden_dim=32", "agent.feature_dim=16", "batch_size=8", "device=cpu"],
                     "results/Exp/runs/drqv2/DMC/cartpole_balance/0", 80),
}


def table(path: Path, drop: tuple[str, ...] = ("time", "fps")) -> list[dict[str, str]]:
    with path.open() as f:
        return [{k: v for k, v in row.items() if k not in drop} for row in csv.DictReader(f)]


def checkpoint_step(path: Path) -> int:
    try:
        return int(torch.load(path, weights_only=True)["run"]["step"])
    except Exception:  # the file is being replaced right now
        return -1


def kill_after_checkpoint(cwd: Path, args: list[str], run: Path, sig: int, at_least: int, rng: random.Random,
                          group: bool = False) -> None:
    """Start the real ML and kill it with ``sig`` a random moment after a checkpoint at step ≥ ``at_least``
    (``group``: every process of its group, as a terminal's ^C or SLURM's signal reaches an env process too)."""
    proc = subprocess.Popen([str(BIN / "ML"), *args], cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if (run / "agent.pt").exists() and checkpoint_step(run / "agent.pt") >= at_least:
            break
        time.sleep(0.02)
    time.sleep(rng.uniform(0, 0.2))  # anywhere between two checkpoints: rows written after it must go
    assert proc.poll() is None, "the run ended before it could be interrupted"
    if group:
        os.killpg(proc.pid, sig)
    else:
        proc.send_signal(sig)
    proc.wait(timeout=60)


def assert_same_run(run: Path, whole: Path) -> None:
    assert table(run / "eval.csv") == table(whole / "eval.csv")
    assert table(run / "train.csv") == table(whole / "train.csv")
    for replay in sorted(whole.rglob("replay*.h5")):  # each game's or task's (together: <task>/replay.h5)
        with h5py.File(run / replay.relative_to(whole)) as a, h5py.File(replay) as b:
            for name in ("obs", "action", "reward", "episodes"):
                np.testing.assert_array_equal(a[name][()], b[name][()])
    assert json.loads((run / "run.json").read_text())["status"] == "complete"


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory):
    """Each case's uninterrupted run, made once, in this process (``ML``'s own entry point, fewer startups)."""
    from ML.cli import main

    made: dict[str, Path] = {}

    def get(kind: str) -> Path:
        if kind not in made:
            args, run, _ = CASES[kind]
            cwd = tmp_path_factory.mktemp(f"whole-{kind}")
            assert main([*args, *COMMON, f"results={cwd / 'results'}"]) == 0
            made[kind] = cwd / run
        return made[kind]

    return get


@pytest.mark.parametrize("kind", list(CASES))
def test_sigkilled_run_resumes_exactly(tmp_path: Path, uninterrupted, kind: str) -> None:
    """Killed a random moment after a checkpoint, even in the middle of writing a row (the torn tail the
    resume drops), the same command ends with the files of an uninterrupted run."""
    args, run_path, at_least = CASES[kind]
    args = [*args, *COMMON]
    seed = random.randrange(10**6)
    run = tmp_path / run_path
    kill_after_checkpoint(tmp_path, args, run, signal.SIGKILL, at_least, random.Random(seed))
    whole = uninterrupted(kind)
    # the killed run kept every row it wrote (appended and flushed), and no more than a whole run has
    cut, full = table(run / "train.csv"), table(whole / "train.csv")
    assert 0 < len(cut) < len(full), seed
    assert cut == [{k: row[k] for k in cut[0]} for row in full[:len(cut)]], seed  # (columns it had then)
    assert json.loads((run / "run.json").read_text())["status"] == "running"
    with (run / "train.csv").open("a") as f:
        f.write("99999,12")  # a kill mid-write: half a line, no line end
    assert [{k: v for k, v in r.items() if k not in ("time", "fps")} for r in read_rows(run / "train.csv")[1]] \
        == cut  # readers drop it
    out = run_ml(*args, cwd=tmp_path).stdout  # the same command
    assert "resuming" in out, seed
    assert_same_run(run, whole)


@pytest.mark.parametrize("kind", ["dqn", "drqv2-pixels"])
def test_sigterm_checkpoints_and_resumes_exactly(tmp_path: Path, uninterrupted, kind: str) -> None:
    """SIGTERM to the whole process group (drqv2's env steps in a process of its own, env_process=true)."""
    args, run_path, at_least = CASES[kind]
    args = [*args, *COMMON]
    run = tmp_path / run_path
    kill_after_checkpoint(tmp_path, args, run, signal.SIGTERM, at_least, random.Random(0), group=True)
    assert json.loads((run / "run.json").read_text())["status"] == "interrupted"
    assert "resuming" in run_ml(*args, cwd=tmp_path).stdout
    assert_same_run(run, uninterrupted(kind))


def test_a_running_run_whose_heartbeat_stopped_reads_as_killed(tmp_path: Path, uninterrupted) -> None:
    """run.json's heartbeat: a live run keeps it fresh; a stale one is `killed` to every reader, never a result."""
    from ML import runinfo
    from ML.benchmarking import cells, scores

    run = tmp_path / "run"
    run.mkdir()
    for name in ("eval.csv", "train.csv"):
        (run / name).write_bytes((uninterrupted("classify") / name).read_bytes())
    info = json.loads((uninterrupted("classify") / "run.json").read_text())
    assert info["resume_exact"] is True and info["heartbeat"]
    fresh = {**info, "status": "running", "heartbeat": runinfo.now()}
    assert runinfo.status(fresh) == "running"
    stale = {**info, "status": "running", "heartbeat": "2020-01-01T00:00:00+00:00"}
    assert runinfo.status(stale) == "killed"
    assert runinfo.status({**info, "status": "running", "heartbeat": None}) == "running"  # from before heartbeats
    (run / "run.json").write_text(json.dumps(stale))
    lines: list[str] = []
    assert scores.gather([run / "run.json"], log=lines.append).empty
    assert "(killed)" in lines[0]
    assert "killed" in scores.check(run / "run.json")
    row = cells.table([run / "run.json"]).iloc[0]
    assert row["status"] == "killed" and "heartbeat stopped" in row["reason"]


def test_the_heartbeat_beats_while_the_run_lives(tmp_path: Path) -> None:
    from ML import runinfo

    info = runinfo.RunInfo(tmp_path / "run.json", {}, {}, {}, ["ML"])
    info.write()
    first = (tmp_path / "run.json").stat().st_mtime_ns
    with info.heartbeat(every=0.05):
        time.sleep(0.5)
    assert (tmp_path / "run.json").stat().st_mtime_ns > first
    assert runinfo.status(json.loads((tmp_path / "run.json").read_text())) == "running"


def test_a_complete_run_of_another_config_is_not_replaced(tmp_path: Path) -> None:
    from ML.cli import main

    args = ["task=classify", "train_steps=20", "evaluate_per_steps=0", f"results={tmp_path / 'results'}", *COMMON]
    assert main(args) == 0
    run = tmp_path / "results/Exp/runs/classify/Classify/Digits/0"
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    proc = run_ml(*args, "lr=0.01", cwd=tmp_path, check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.count("\n") == 1 and "experiment=" in proc.stderr and "overwrite=true" in proc.stderr
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before
    assert main([*args, "lr=0.01", "overwrite=true"]) == 0
    assert json.loads((run / "run.json").read_text())["config"]["lr"] == 0.01


def test_run_json_says_where_resume_is_not_exact() -> None:
    """Atari with a lost life ending training episodes cannot be rebuilt by replaying an episode's actions;
    stream=true keeps no replay to resume."""
    from ML.envs.atari import Atari
    from ML.hyperparams import resolve_config
    from ML.run import resume_exactness

    config = resolve_config(argv=["task=dqn"])
    lives = Atari("breakout", terminal_on_life_loss=True)
    plain = Atari("breakout", terminal_on_life_loss=False)
    try:
        assert resume_exactness(config, lives.task_spec)["resume_exact"] is False
        assert "life" in resume_exactness(config, lives.task_spec)["resume_note"]
        assert resume_exactness(config, plain.task_spec) == {"resume_exact": True}
        assert resume_exactness({**config, "world_size": 2}, plain.task_spec)["resume_exact"] is False
        assert "stream" in resume_exactness({**config, "stream": True}, plain.task_spec)["resume_note"]
        stopped = {"resume_exact": False, "resume_note": "stopped between checkpoints", "resume_inexact_at": 7}
        assert resume_exactness(config, plain.task_spec, stopped) == stopped  # an earlier stop's false stays
    finally:
        lives.close()
        plain.close()


def test_a_checkpoint_holding_pickled_objects_is_refused(tmp_path: Path) -> None:
    """agent.pt loads with weights_only=True: a file that needs unpickling (code) is one line, never run."""
    from ML import checkpoints
    from ML.errors import UserError

    torch.save({"format": checkpoints.FORMAT, "version": checkpoints.VERSION, "agent": Path("x")},
               tmp_path / "agent.pt")
    with pytest.raises(UserError, match="holds pickled objects"):
        checkpoints.read(tmp_path / "agent.pt")


def test_run_state_round_trips_through_a_weights_only_payload(tmp_path: Path) -> None:
    from ML import checkpoints

    state = checkpoints.RunState(step=7, driver={"actions": [np.int64(1), np.array([0.5, -1.0], np.float32)]},
                                 rng=checkpoints.rng_states(), logs={"eval.csv": (2, ["step", "score"])})
    torch.save(state.to_payload(), tmp_path / "state.pt")
    back = checkpoints.RunState.from_payload(torch.load(tmp_path / "state.pt", weights_only=True))
    assert back.step == 7 and back.driver["actions"][0] == 1
    np.testing.assert_array_equal(back.driver["actions"][1], np.array([0.5, -1.0], np.float32))
    before = np.random.random()
    checkpoints.restore_rng(back.rng)
    assert np.random.random() == before
