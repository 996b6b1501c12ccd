"""The attack table: commands that try to lose a complete run, run it twice, run code through a name, or
double its rows. Every case asserts that every file that was there is byte-identical after (hashes), that no
canary file appeared, that no eval.csv holds a step twice, and the exit status with a one-line message.

Two complete runs (a classifier and a DQN) are trained once per module and copied into each case; the cases
run in-process through ``ML.cli.main``. A second writer is a real process holding the run's lock; the kills
are real SIGKILLs of the real ``ML``; the read-only and full disks are real tmpfs mounts.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
import torch

import ML
from ML import cli
from ML.errors import UserError
from tests.conftest import BIN

CLS = ["task=classify", "train_steps=4", "evaluate_per_steps=2", "log_per_steps=2", "progress=false", "threads=1"]
DQN = ["task=dqn", "train_steps=24", "evaluate_per_steps=12", "evaluate_episodes=1", "log_per_steps=12",
       "agent.learn_start=8", "batch_size=8", "progress=false", "threads=1"]
CLS_RUN = "results/Exp/runs/classify/Classify/Digits/0"
DQN_RUN = "results/Exp/runs/dqn/Classic/CartPole-v1/0"
CANARY = "canary"
HOLDER = ("import sys, time\nfrom pathlib import Path\nfrom ML import runlock\n"
          "with runlock.hold(Path(sys.argv[1]), 'a test holder'):\n"
          "    print('held', flush=True)\n    time.sleep(600)\n")


_HOLDERS: list[subprocess.Popen] = []  # the live second writers of the current case


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The two complete runs, trained once."""
    root = tmp_path_factory.mktemp("complete")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        mp.setattr(sys, "argv", ["test"])
        assert cli.main(CLS) == 0 and cli.main(DQN) == 0
    return root


@pytest.fixture
def arena(built: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A copy of the complete runs to attack, as the working directory; live holders are stopped after."""
    root = tmp_path / "w"
    shutil.copytree(built, root)
    monkeypatch.chdir(root)
    monkeypatch.setattr(sys, "argv", ["test"])
    yield root
    for proc in _HOLDERS:
        proc.kill()
        proc.wait()
    _HOLDERS.clear()


def hashes(root: Path) -> dict[str, str]:
    """Every file under ``root`` (lock files aside: see ``no_lock_left``) by its sha256."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and not p.name.endswith(".lock")}


def steps(path: Path) -> list[str]:
    with path.open(newline="", errors="replace") as f:
        return [row[0] for row in list(csv.reader(f))[1:] if row]


def doubled_rows(root: Path) -> dict[str, int]:
    """eval.csv rows whose step is a step of an earlier row, per file."""
    return {str(p.relative_to(root)): len(rows) - len(set(rows)) for p in root.rglob("eval.csv")
            for rows in [steps(p)]}


def one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith("ML: warning")]
    assert "Traceback" not in err and len(lines) == 1, err
    return lines[0]


# ------------------------------------------------------------------ setups (each returns nothing)


def _hold(run: str) -> Callable[[Path], None]:
    """A second writer: a live process holding ``run``'s lock."""
    def setup(root: Path) -> None:
        proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(root / run)], stdout=subprocess.PIPE, text=True)
        _HOLDERS.append(proc)
        assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return setup


def _dead_holder(root: Path) -> None:
    """A writer SIGKILLed while it held the lock: its lock file stays, its lock does not."""
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(root / CLS_RUN)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    proc.kill()
    proc.wait()
    assert (root / CLS_RUN).parent.joinpath(".0.lock").is_file()


def _payload(root: Path) -> dict[str, Any]:
    return torch.load(root / CLS_RUN / "agent.pt", map_location="cpu", weights_only=True)


def _crafted(change: Callable[[dict[str, Any], Path], Any]) -> Callable[[Path], None]:
    """``crafted.pt``: the complete classifier's weights-only agent.pt, edited by ``change``."""
    def setup(root: Path) -> None:
        payload = _payload(root)
        out = change(payload, root)
        torch.save(payload if out is None else out, root / "crafted.pt")
    return setup


def _agent_config(**values: Any) -> Callable[[dict[str, Any], Path], None]:
    def change(payload: dict[str, Any], root: Path) -> None:
        payload["agent"]["config"].update({k: v.replace("{canary}", str(root / CANARY)) if isinstance(v, str)
                                           else v for k, v in values.items()})
    return change


def _set(path: str, value: Any) -> Callable[[dict[str, Any], Path], None]:
    def change(payload: dict[str, Any], root: Path) -> None:
        node = payload
        *parents, last = path.split(".")
        for key in parents:
            node = node[key]
        node[last] = value
    return change


def _evil_file(name: str) -> Callable[[Path], None]:
    """A user file whose import would create the canary (so importing it is what the case must avoid)."""
    def setup(root: Path) -> None:
        (root / name).write_text(f"open({str(root / CANARY)!r}, 'w').close()\nfrom torch import nn\n"
                                 "class Net(nn.Module):\n    pass\nevil = Net\n")
    return setup


def _both(*setups: Callable[[Path], None]) -> Callable[[Path], None]:
    def setup(root: Path) -> None:
        for one in setups:
            one(root)
    return setup


def _write(path: str, data: bytes | str) -> Callable[[Path], None]:
    def setup(root: Path) -> None:
        (root / path).write_bytes(data.encode() if isinstance(data, str) else data)
    return setup


def _edit_run_json(**fields: Any) -> Callable[[Path], None]:
    def setup(root: Path) -> None:
        path = root / CLS_RUN / "run.json"
        path.write_text(json.dumps({**json.loads(path.read_text()), **fields}))
    return setup


def _h5(make: Callable[[h5py.File], None]) -> Callable[[Path], None]:
    def setup(root: Path) -> None:
        (root / DQN_RUN / "replay.h5").unlink()
        with h5py.File(root / DQN_RUN / "replay.h5", "w") as f:
            make(f)
    return setup


def _copy_agent(root: Path) -> None:
    (root / "elsewhere").mkdir()
    shutil.copy2(root / CLS_RUN / "agent.pt", root / "elsewhere" / "agent.pt")


DONE = "is complete with this config: nothing to train"
BUSY = "is being written by another ML (pid "
UNTRUSTED = "code outside ML and torch"
OTHER = ["experiment=Other"]  # a fresh run directory: only the checkpoint is under attack

# (id, argv, exit status, fragment of the one line (stdout for exit 0, stderr for 2), setup)
CASES: list[tuple[str, list[str], int, str, Callable[[Path], None] | None]] = [
    # the same command twice: a complete run of this config is not trained again
    ("same-classify", CLS, 0, DONE, None),
    ("same-dqn", DQN, 0, DONE, None),
    ("same-reordered", CLS[::-1], 0, DONE, None),
    ("same-other-threads", [*CLS, "threads=2"], 0, DONE, None),
    ("same-resume-false", [*CLS, "resume=false"], 0, DONE, None),
    ("same-load-false", [*CLS, "load=false"], 0, DONE, None),
    ("same-debug", [*CLS, "debug=true"], 0, DONE, None),
    ("same-as-a-sweep", ["-m", *CLS, "seed=0"], 0, DONE, None),
    ("same-dead-holder", CLS, 0, DONE, _dead_holder),
    ("same-doubled-eval-kept", CLS, 0, DONE, _write(f"{CLS_RUN}/eval.csv", "step,score\n2,0.5\n2,0.5\n")),
    # two commands at once: one writer per run directory
    ("busy-same", CLS, 2, BUSY, _hold(CLS_RUN)),
    ("busy-dqn", DQN, 2, BUSY, _hold(DQN_RUN)),
    ("busy-overwrite", [*CLS, "lr=0.5", "overwrite=true"], 2, BUSY, _hold(CLS_RUN)),
    ("busy-load-true", [*CLS, "train_steps=6", "load=true"], 2, BUSY, _hold(CLS_RUN)),
    ("busy-fresh-directory", [*CLS, *OTHER], 2, BUSY, _hold("results/Other/runs/classify/Classify/Digits/0")),
    ("busy-offline", [*DQN, "offline=true", "overwrite=true"], 2, BUSY, _hold(DQN_RUN)),
    # names that are not parts: refused before anything is called, over a complete run of another config
    ("eyes-popen", [*CLS, "lr=0.5", "Eyes=subprocess.Popen", "+eyes.args=[touch,{canary}]"], 2,
     "Eyes=subprocess.Popen is the class subprocess.Popen: Eyes takes an nn.Module", None),
    ("model-popen", [*CLS, "lr=0.5", "Model=subprocess.Popen", "+model.args=[touch,{canary}]"], 2,
     "Model=subprocess.Popen is the class", None),
    ("eyes-os-system", [*CLS, "lr=0.5", "Eyes=os.system", "+eyes.command=touch {canary}"], 2,
     "Eyes=os.system names a function", None),
    ("model-builtins-eval", [*CLS, "lr=0.5", "Model=builtins.eval", "+model.source=open('{canary}','w')"], 2,
     "Model=builtins.eval names a function", None),
    ("eyes-builtins-exec", [*CLS, "lr=0.5", "Eyes=builtins.exec"], 2, "Eyes=builtins.exec names a function", None),
    ("model-builtins-open", [*CLS, "lr=0.5", "Model=builtins.open", "+model.file={canary}", "+model.mode=w"], 2,
     "Model=builtins.open names a function", None),
    ("eyes-subprocess-run", [*CLS, "lr=0.5", "Eyes=subprocess.run"], 2, "Eyes=subprocess.run names a function",
     None),
    ("eyes-rmtree", [*CLS, "lr=0.5", "Eyes=shutil.rmtree", "+eyes.path=results"], 2, "names a function", None),
    ("eyes-torch-load", [*CLS, "lr=0.5", "Eyes=torch.load", "+eyes.f=x.pt"], 2, "Eyes=torch.load names a function",
     None),
    ("model-functional", [*CLS, "lr=0.5", "Model=torch.nn.functional.relu"], 2, "names a function", None),
    ("eyes-not-a-module", [*CLS, "lr=0.5", "Eyes=collections.OrderedDict"], 2,
     "Eyes=collections.OrderedDict is the class collections.OrderedDict", None),
    ("eyes-path-class", [*CLS, "lr=0.5", "Eyes=pathlib.Path", "+eyes.args=[x]"], 2, "is the class pathlib", None),
    ("eyes-tensor-class", [*CLS, "lr=0.5", "Eyes=torch.Tensor"], 2, "is the class torch.Tensor", None),
    ("eyes-an-object", [*CLS, "lr=0.5", "Eyes=os.environ"], 2, "Eyes=os.environ is a _Environ object", None),
    ("eyes-a-number", [*CLS, "lr=0.5", "Eyes=math.pi"], 2, "Eyes=math.pi is a float object", None),
    ("eyes-in-a-list", [*CLS, "lr=0.5", "Eyes=[CNN,subprocess.Popen]"], 2, "subprocess.Popen is the class", None),
    ("optim-a-module", [*CLS, "lr=0.5", "Optim=torch.nn.Linear"], 2,
     "Optim=torch.nn.Linear is the class torch.nn.modules.linear.Linear: Optim takes a torch Optimizer", None),
    ("optim-popen", [*CLS, "lr=0.5", "Optim=subprocess.Popen"], 2, "Optim takes a torch Optimizer", None),
    ("scheduler-an-optimiser", [*CLS, "lr=0.5", "Scheduler=torch.optim.Adam"], 2,
     "Scheduler takes a learning-rate scheduler", None),
    ("scheduler-os-system", [*CLS, "lr=0.5", "Scheduler=os.system"], 2, "Scheduler=os.system names a function",
     None),
    ("agent-popen", [*CLS, "lr=0.5", "Agent=subprocess.Popen", "+agent.args=[touch,{canary}]"], 2,
     "Agent takes an agent", None),
    ("agent-a-module", [*CLS, "lr=0.5", "Agent=torch.nn.Linear"], 2, "Agent takes an agent", None),
    ("dataset-popen", [*CLS, "lr=0.5", "Dataset=subprocess.Popen", "+dataset.args=[touch,{canary}]"], 2,
     "Dataset takes a torch Dataset", None),
    ("dataset-a-module", [*CLS, "lr=0.5", "Dataset=torch.nn.Linear"], 2, "Dataset takes a torch Dataset", None),
    ("test-dataset-os-system", [*CLS, "lr=0.5", "TestDataset=os.system"], 2, "os.system names a function", None),
    ("aug-popen", [*CLS, "lr=0.5", "Aug=subprocess.Popen", "+aug.args=[touch,{canary}]"], 2,
     "Aug=subprocess.Popen is the class", None),
    ("trunk-os-system", [*CLS, "lr=0.5", "Trunk=os.system"], 2, "Trunk=os.system names a function", None),
    ("pool-popen", [*CLS, "lr=0.5", "Pool=subprocess.Popen"], 2, "Pool=subprocess.Popen is the class", None),
    ("unused-discriminator", [*CLS, "lr=0.5", "Discriminator=subprocess.Popen"], 2,
     "Discriminator=subprocess.Popen is the class", None),
    ("env-popen", [*DQN, "lr=0.5", "Env=subprocess.Popen", "+env.args=[touch,{canary}]"], 2,
     "Env takes a gymnasium Env", None),
    ("env-os-system", [*DQN, "lr=0.5", "Env=os.system"], 2, "Env=os.system names a function", None),
    ("bad-name-over-complete-run", [*CLS, "lr=0.5", "Eyes=NoSuch.Thing"], 2, "cannot resolve 'Eyes=NoSuch.Thing'",
     None),
    ("bad-type-over-complete-run", [*CLS, "lr=banana"], 2, "lr=banana: expected a number", None),
    ("bad-argument-over-complete-run", [*CLS, "lr=0.5", "Eyes=CNN", "eyes.nosuch=1"], 2,
     "Eyes does not take argument 'nosuch'", None),
    # crafted agent.pt given to load= (weights-only files whose config names code)
    ("pt-agent-popen", [*CLS, *OTHER, "load=crafted.pt"], 2, UNTRUSTED,
     _crafted(_set("agent.target", "subprocess.Popen"))),
    ("pt-agent-os-system", [*CLS, *OTHER, "load=crafted.pt"], 2, UNTRUSTED,
     _crafted(_set("agent.target", "os.system"))),
    ("pt-agent-eval", [*CLS, *OTHER, "load=crafted.pt"], 2, UNTRUSTED,
     _crafted(_set("agent.target", "builtins.eval"))),
    ("pt-eyes-popen", [*CLS, *OTHER, "load=crafted.pt"], 2, UNTRUSTED,
     _crafted(_agent_config(Eyes="subprocess.Popen", eyes={"args": ["touch", "{canary}"]}))),
    ("pt-eyes-torch-class", [*CLS, *OTHER, "load=crafted.pt"], 2, "Eyes=torch.Tensor is the class",
     _crafted(_agent_config(Eyes="torch.Tensor"))),
    ("pt-model-torch-load", [*CLS, *OTHER, "load=crafted.pt"], 2, "Model=torch.load names a function",
     _crafted(_agent_config(Model="torch.load"))),
    ("pt-optim-a-module", [*CLS, *OTHER, "load=crafted.pt"], 2, "Optim takes a torch Optimizer",
     _crafted(_agent_config(Optim="torch.nn.Linear"))),
    ("pt-myfile", [*CLS, *OTHER, "load=crafted.pt"], 2, UNTRUSTED,
     _both(_evil_file("MyFile.py"), _crafted(_agent_config(Model="MyFile.evil")))),
    ("pt-file-path", [*CLS, *OTHER, "load=crafted.pt"], 2, UNTRUSTED,
     _both(_evil_file("evil.py"), _crafted(_agent_config(Eyes="./evil.py.Net")))),
    ("pt-direct-code-myfile", [*CLS, *OTHER, "load=crafted.pt"], 2, UNTRUSTED,
     _both(_evil_file("MyFile.py"), _crafted(_agent_config(Model="MyFile.Net()")))),
    ("pt-spec-extra-key", [*CLS, *OTHER, "load=crafted.pt"], 2, "is malformed",
     _crafted(_set("agent.spec.run", "os.system"))),
    ("pt-spec-shape", [*CLS, *OTHER, "load=crafted.pt"], 2, "is malformed",
     _crafted(_set("agent.spec.obs_shape", "1,8,8"))),
    ("pt-target-not-a-name", [*CLS, *OTHER, "load=crafted.pt"], 2, "is malformed", _crafted(_set("agent.target", 7))),
    ("pt-no-agent", [*CLS, *OTHER, "load=crafted.pt"], 2, "is malformed", _crafted(_set("agent", None))),
    ("pt-pickled-object", [*CLS, *OTHER, "load=crafted.pt"], 2, "holds pickled objects",
     _crafted(lambda p, root: {**p, "agent": Path("x")})),
    ("pt-not-a-checkpoint", [*CLS, *OTHER, "load=crafted.pt"], 2, "is not a UnifiedML checkpoint",
     _crafted(lambda p, root: [1, 2, 3])),
    ("pt-version", [*CLS, *OTHER, "load=crafted.pt"], 2, "format version 99", _crafted(_set("version", 99))),
    ("pt-truncated", [*CLS, *OTHER, "load=crafted.pt"], 2, "is corrupt or unreadable",
     lambda root: (root / "crafted.pt").write_bytes((root / CLS_RUN / "agent.pt").read_bytes()[:5000])),
    # load= mismatches
    ("load-another-task-over-complete-run", [*CLS, f"load={DQN_RUN}/agent.pt"], 2,
     "was trained on Classic CartPole-v1 (observations [4], 2 actions), not this run's Classify Digits", None),
    ("load-another-task-fresh", [*CLS, *OTHER, f"load={DQN_RUN}"], 2, "was trained on Classic CartPole-v1", None),
    ("load-classifier-into-dqn", [*DQN, "experiment=Other", f"load={CLS_RUN}"], 2, "was trained on Classify Digits",
     None),
    ("load-over-complete-run", [*CLS, "load=elsewhere/agent.pt"], 2, "load=elsewhere/agent.pt would start it over",
     _copy_agent),
    ("load-nothing-there", [*CLS, "load=no such words"], 2, "no agent.pt under results/", None),
    ("load-a-folder-without-one", [*CLS, *OTHER, "load=results/Exp"], 2, "no checkpoint at results/Exp/agent.pt",
     None),
    # crafted run records
    ("run-json-garbage", CLS, 2, "is not a readable run record", _write(f"{CLS_RUN}/run.json", b"\x00\xff{{")),
    ("run-json-a-list", CLS, 2, "is not a readable run record", _write(f"{CLS_RUN}/run.json", "[1, 2]")),
    ("run-json-removed", CLS, 2, "holds eval.csv, train.csv, agent.pt but no run.json",
     lambda root: (root / CLS_RUN / "run.json").unlink()),
    ("run-json-other-hash", CLS, 2, "holds a complete run of another config", _edit_run_json(config_hash="0" * 16)),
    ("eval-csv-garbage-kept", CLS, 0, DONE, _write(f"{CLS_RUN}/eval.csv", b"\x00\xff\x00garbage\n\x01")),
    # crafted replay.h5 under offline=true (over the complete run: replaced only if the new run completes)
    ("replay-not-hdf5", [*DQN, "offline=true", "overwrite=true"], 2, "replay.h5",
     _write(f"{DQN_RUN}/replay.h5", b"\x89HDF\r\n\x1a\n but not really")),
    ("replay-empty-hdf5", [*DQN, "offline=true", "overwrite=true"], 2, "replay.h5", _h5(lambda f: None)),
    ("replay-wrong-shapes", [*DQN, "offline=true", "overwrite=true"], 2, "replay.h5",
     _h5(lambda f: f.create_dataset("obs", data=np.zeros((5, 3), np.float32)))),
]


@pytest.mark.parametrize(("argv", "code", "expected", "setup"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_attack(arena: Path, capsys: pytest.CaptureFixture[str], argv: list[str], code: int, expected: str,
                setup: Callable[[Path], None] | None) -> None:
    if setup is not None:
        setup(arena)
    locks = {p for p in arena.rglob("*.lock")}
    before, doubled = hashes(arena), doubled_rows(arena)
    status = cli.main([a.replace("{canary}", str(arena / CANARY)) for a in argv])
    out, err = capsys.readouterr()
    assert status == code, err
    if code:
        assert expected in one_line(err), err
    else:
        assert expected in out and "Traceback" not in err, out + err
    assert hashes(arena) == before  # every file byte-identical, none added or removed
    assert not (arena / CANARY).exists()
    assert {p for p in arena.rglob("*.lock") if p not in locks} == set()  # a lock taken is given back
    assert doubled_rows(arena) == doubled


# ------------------------------------------------------------------ the same from code


LOADS = [c for c in CASES if c[0].startswith("pt-")]


@pytest.mark.parametrize(("expected", "setup"), [(c[3], c[4]) for c in LOADS], ids=[c[0] for c in LOADS])
def test_load_agent_refuses_crafted_checkpoints(arena: Path, expected: str, setup: Callable[[Path], None]) -> None:
    """``ML.load_agent`` rebuilds an agent from a checkpoint's config under the same checks."""
    setup(arena)
    before = hashes(arena)
    with pytest.raises(UserError) as error:
        ML.load_agent(str(arena / "crafted.pt"))
    assert expected in str(error.value) and "\n" not in str(error.value)
    assert hashes(arena) == before and not (arena / CANARY).exists()


def test_trusted_checkpoint_builds_its_own_code(arena: Path) -> None:
    """The user's own module, named in a checkpoint, builds only when they say they trust it."""
    (arena / "MyNet.py").write_text("from ML.blocks.architectures import MLP\nclass Net(MLP):\n    pass\n")
    _crafted(_agent_config(Model="MyNet.Net"))(arena)
    with pytest.raises(UserError, match=UNTRUSTED):
        ML.load_agent(str(arena / "crafted.pt"))
    assert "MyNet" not in sys.modules  # refused before it was imported
    agent = ML.load_agent(str(arena / "crafted.pt"), trust=True)
    original = ML.load_agent(str(arena / CLS_RUN))
    assert type(agent.net[-1]).__name__ == "Net" and type(agent.net[-1]).__module__ == "MyNet"
    x = torch.rand(3, 1, 8, 8)
    assert torch.equal(agent(x), original(x))


def test_launch_same_config_returns_the_saved_agent(arena: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = hashes(arena)
    agent = ML.launch(*CLS)
    saved = ML.load_agent(str(arena / CLS_RUN))
    assert all(torch.equal(a, b) for a, b in zip(agent.state_dict().values(), saved.state_dict().values(),
                                                  strict=True))
    assert DONE in capsys.readouterr().out and hashes(arena) == before


def test_launch_with_a_second_writer_raises(arena: Path) -> None:
    _hold(CLS_RUN)(arena)
    before = hashes(arena)
    with pytest.raises(UserError, match=r"being written by another ML \(pid \d+ on .+, started a test holder\)"):
        ML.launch(*CLS, "overwrite=true")
    assert hashes(arena) == before


# ------------------------------------------------------------------ two real writers, kills, swaps


def _ml(root: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen([str(BIN / "ML"), *args], cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def test_two_commands_at_once(arena: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A real ML process trains; the same command beside it (here in-process) stops in one line naming it; the
    first goes on alone (stopped here by SIGTERM), and no eval.csv row is written twice."""
    args = [*CLS, "experiment=Twice", "train_steps=1000000", "evaluate_per_steps=200", "log_per_steps=100"]
    first = _ml(arena, *args)
    run = arena / "results/Twice/runs/classify/Classify/Digits/0"
    deadline = time.time() + 120
    while not (run / "eval.csv").exists() and time.time() < deadline:
        time.sleep(0.05)
    assert cli.main(args) == 2
    line = one_line(capsys.readouterr().err)
    assert BUSY in line and f"pid {first.pid} " in line, line
    first.send_signal(signal.SIGTERM)
    first.communicate(timeout=120)
    assert first.returncode == 143
    rows = steps(run / "eval.csv")
    assert rows and len(rows) == len(set(rows)), rows


def _kill_while_staged(root: Path, args: list[str], run: str) -> None:
    """Start ``ML args`` (which trains beside the complete ``run``) and SIGKILL it after its first checkpoint."""
    proc = _ml(root, *args)
    staged = (root / run).parent / ".0.new" / "agent.pt"
    deadline = time.time() + 120
    while not staged.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.02)
    assert proc.poll() is None, proc.communicate()
    proc.send_signal(signal.SIGKILL)
    proc.wait()


@pytest.mark.parametrize("case", ["overwrite", "offline"])
def test_a_kill_during_a_replacement_keeps_the_old_run(arena: Path, capsys: pytest.CaptureFixture[str],
                                                        case: str) -> None:
    """overwrite=true / offline=true over a complete run, killed midway: the old run is whole; the same command
    resumes the replacement beside it and swaps it in when complete."""
    run, args = {"overwrite": (CLS_RUN, [*CLS, "lr=0.5", "train_steps=1500", "evaluate_per_steps=500"]),
                 "offline": (DQN_RUN, [*DQN, "offline=true", "train_steps=1500", "evaluate_per_steps=500"])}[case]
    args = [*args, "overwrite=true", "save_per_steps=50"]
    before = hashes(arena / run)
    _kill_while_staged(arena, args, run)
    assert hashes(arena / run) == before
    assert cli.main(args) == 0  # the same command, in-process
    assert "resuming" in capsys.readouterr().out
    info = json.loads((arena / run / "run.json").read_text())
    assert info["status"] == "complete" and info["config"]["train_steps"] == 1500
    assert steps(arena / run / "eval.csv") == ["0", "500", "1000", "1500"]
    assert sorted(p.name for p in (arena / run).parent.iterdir()) == ["0"]  # nothing left beside it


def test_load_true_extends_a_complete_run_beside_it(arena: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([*CLS, "train_steps=6", "load=true"]) == 0
    assert steps(arena / CLS_RUN / "eval.csv") == ["0", "2", "4", "6"]
    assert sorted(p.name for p in (arena / CLS_RUN).parent.iterdir()) == ["0"]


@pytest.mark.parametrize("new_status", ["complete", "running"])
def test_a_swap_cut_short_is_finished_or_undone(arena: Path, capsys: pytest.CaptureFixture[str],
                                                new_status: str) -> None:
    """A kill between the swap's two renames leaves the old run at ``.0.old`` and the new one at ``.0.new``
    (made here on disk): the next ML takes the new run when it is complete, else the old one back."""
    run = arena / CLS_RUN
    old = hashes(run)
    shutil.copytree(run, run.parent / ".0.new")
    (run.parent / ".0.new" / "train.csv").write_text("step,loss\n4,0.1\n")  # tells the two apart
    record = json.loads((run / "run.json").read_text())
    (run.parent / ".0.new" / "run.json").write_text(json.dumps({**record, "status": new_status}))
    os.rename(run, run.parent / ".0.old")
    assert cli.main(CLS) == 0 and DONE in capsys.readouterr().out
    assert not (run.parent / ".0.old").exists()
    if new_status == "complete":
        assert (run / "train.csv").read_text() == "step,loss\n4,0.1\n" and not (run.parent / ".0.new").exists()
    else:
        assert hashes(run) == old


# ------------------------------------------------------------------ the disk itself


def _tmpfs(target: Path, options: str) -> None:
    target.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(target)], capture_output=True,
                          text=True, check=False)
    if proc.returncode != 0:
        pytest.skip(f"mounting a tmpfs is not permitted here ({proc.stderr.strip()})")


@pytest.fixture
def mounted(arena: Path) -> Iterator[Path]:
    """The complete runs on a tmpfs of their own (2 MB more than they take)."""
    disk = arena / "disk"
    size = sum(p.stat().st_size for p in (arena / "results").rglob("*") if p.is_file())
    _tmpfs(disk, f"size={size // 1024 + 2048}k")
    try:
        shutil.copytree(arena / "results", disk / "results")
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


DISK = [  # (id, argv, the one line, free space left in kB: None for a read-only disk)
    ("read-only-same", [*CLS], "Read-only file system", None),
    ("read-only-overwrite", [*CLS, "lr=0.5", "overwrite=true"], "Read-only file system", None),
    ("read-only-load-true", [*CLS, "train_steps=6", "load=true"], "Read-only file system", None),
    ("full-overwrite", [*CLS, "lr=0.5", "overwrite=true", "+model.hidden_dim=4096"], "free some space", 1536),
    ("full-load-true", [*CLS, "train_steps=6", "load=true", "save_per_steps=1"], "free some space", 1536),
    ("full-copying-the-run", [*CLS, "train_steps=6", "load=true"], "free some space", 256),
]


@pytest.mark.parametrize(("argv", "expected", "free"), [c[1:] for c in DISK], ids=[c[0] for c in DISK])
def test_disk(mounted: Path, capsys: pytest.CaptureFixture[str], argv: list[str], expected: str,
              free: int | None) -> None:
    if free is None:
        subprocess.run(["mount", "-o", "remount,ro", str(mounted)], check=True)
    else:  # fill the disk but for ``free`` kB
        (mounted / "filler").write_bytes(b"\0" * max(shutil.disk_usage(mounted).free - free * 1024, 0))
    before = hashes(mounted)
    status = cli.main([*argv, f"results={mounted / 'results'}"])
    line = one_line(capsys.readouterr().err)
    assert status == 2 and expected in line, line
    assert hashes(mounted) == before
