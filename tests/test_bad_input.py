"""Bad input, table-driven: every case is one line naming the problem and its fix, exit 2, no traceback, and
every file that was there before is byte-identical after (nothing written, nothing removed).

The command-line cases run in-process through ``ML.cli.main`` / ``ML.plot_cli.main`` (the real front doors,
without a subprocess each), the code cases through ``ML.launch``, the pipeline cases through the grid
validation snakemake runs. Files on disk are real: a torch checkpoint cut in half, an HDF5 file that is not
one, a results path under a file, a read-only mount and a full one.
"""

from __future__ import annotations

import contextlib
import inspect
import io
import json
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch

import ML
from ML import cli, plot_cli
from ML.benchmarking import grid
from ML.errors import UserError
from ML.hyperparams import recipes, resolve, resolve_config, schema

RUN = Path("results/Exp/runs/classify/Classify/Digits/0")  # where `ML task=classify` writes
DQN_RUN = Path("results/Exp/runs/dqn/Classic/CartPole-v1/0")
TINY = ["train_steps=2", "evaluate_per_steps=0", "progress=false", "threads=1"]


def _file(path: str, data: bytes | str) -> Callable[[Path], None]:
    def make(root: Path) -> None:
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data.encode() if isinstance(data, str) else data)
    return make


def _truncated_checkpoint(root: Path) -> None:
    buffer = io.BytesIO()
    torch.save({"format": "unifiedml-agent", "state": {"step": 1}, "agent": torch.nn.Linear(64, 64)}, buffer)
    _file(str(RUN / "agent.pt"), buffer.getvalue()[: len(buffer.getvalue()) // 2])(root)


def _complete_run_with_bad_eval(root: Path) -> None:
    info = {"status": "complete", "experiment": "Exp", "recipe": "classify", "suite": "Classify",
            "task": "Digits", "seed": 0}
    _file(str(RUN / "run.json"), json.dumps(info))(root)
    _file(str(RUN / "eval.csv"), b"\x00\xff\x00garbage\n\x01")(root)


# an agent written for the contract before typed settings: its constructor takes the whole config
OLD_AGENT = """from ML.agents.base import BaseAgent


class OldAgent(BaseAgent):
    def __init__(self, spec, config):
        super().__init__()
        self.n = int(spec.num_actions)

    def act(self, obs, step, eval_mode=False):
        return 0
"""

# (id, argv, expected fragment of the one line, files made first)
CLI: list[tuple[str, list[str], str, Callable[[Path], None] | None]] = [
    ("not-an-integer", ["task=classify", "train_steps=banana"], "train_steps=banana: expected an integer ≥ 0", None),
    ("negative-steps", ["task=classify", "train_steps=-5"], "train_steps=-5: expected an integer ≥ 0", None),
    ("zero-batch", ["task=classify", "batch_size=0"], "batch_size=0: expected an integer > 0", None),
    ("negative-lr", ["task=classify", "lr=-1"], "lr=-1: expected a number > 0", None),
    ("negative-episodes", ["task=dqn", "evaluate_episodes=-1"], "evaluate_episodes=-1: expected an integer ≥ 0",
     None),
    ("fractional-seed", ["task=classify", "seed=1.5"], "seed=1.5: expected an integer", None),
    ("boolean-seed", ["task=classify", "seed=true"], "seed=true: expected an integer", None),
    ("not-a-boolean", ["task=classify", "save=maybe"], "save=maybe: expected true or false", None),
    ("nested-range", ["task=dqn", "replay.capacity=0"], "replay.capacity=0: expected an integer > 0", None),
    ("args-not-a-mapping", ["task=classify", "eyes=[1,2]"], "eyes=[1,2]: expected a mapping", None),
    ("part-a-number", ["task=classify", "Model=5"], "Model=5: expected a name", None),
    ("unknown-key", ["task=classify", "trainsteps=5"], "unknown key 'trainsteps': did you mean 'train_steps'", None),
    ("unknown-nested-key", ["task=dqn", "replay.size=5"], "unknown key 'replay.size'", None),
    ("malformed-list", ["task=classify", "Eyes=[CNN,"], "cannot parse value '[CNN,' as YAML", None),
    ("no-equals", ["task=classify", "train_steps"], "cannot read argument 'train_steps': write key=value", None),
    ("sweep-bad-value", ["-m", "task=classify", "seed=0,banana"], "seed=banana: expected an integer", None),
    ("unknown-recipe", ["task=nosuch"], "unknown recipe 'nosuch'", None),
    ("unknown-dataset", ["task=classify", "Dataset=Nosuch"], "unknown Dataset 'Nosuch'", None),
    ("unknown-test-dataset", ["task=classify", "TestDataset=Nosuch.Set"], "cannot resolve 'Dataset=Nosuch.Set'",
     None),
    ("unknown-optimiser", ["task=classify", "Optim=Adamm"], "cannot resolve 'Optim=Adamm'", None),
    ("unknown-scheduler", ["task=classify", "Scheduler=CosineLR"], "cannot resolve 'Scheduler=CosineLR'", None),
    ("unknown-classic-task", ["task=dqn", "env.task=CartPol-v1"], "CartPol-v1", None),
    ("unknown-atari-game", ["task=dqn_atari", "env.game=pongg", "device=cpu"], "pongg", None),
    ("unknown-dmc-task", ["task=drqv2_states", "env.task=cheetah_runn", "device=cpu"], "cheetah_runn", None),
    ("agent-argument-type", ["task=dqn", "agent.n_step=banana"], "agent.n_step=banana: expected an integer", None),
    ("agent-argument-range", ["task=dqn", "agent.gamma=1.5"], "agent.gamma=1.5: expected a number ≥ 0 and ≤ 1",
     None),
    ("architecture-argument-range", ["task=classify", "model.hidden_dim=0"],
     "model.hidden_dim=0: expected an integer ≥ 1", None),
    ("unknown-constructor-argument", ["task=classify", "Eyes=CNN", "eyes.nosuch=1"],
     "Eyes does not take argument 'nosuch'", None),
    ("direct-code-global-setter", ["task=classify", "Model=torch.set_default_dtype(torch.float64)"],
     "torch.set_default_dtype(...) is not a constructor", None),
    ("direct-code-io", ["task=classify", "Model=torch.load('agent.pt')"], "torch.load(...) is not a constructor",
     None),
    ("module-path-function", ["task=classify", "Eyes=os.system"], "Eyes=os.system names a function", None),
    ("module-path-not-a-part", ["task=classify", "Eyes=subprocess.Popen", "+eyes.args=[touch,canary]"],
     "Eyes=subprocess.Popen is the class subprocess.Popen: Eyes takes an nn.Module", None),
    ("optimiser-not-an-optimiser", ["task=classify", "Optim=torch.nn.Linear"], "Optim takes a torch Optimizer", None),
    ("trust-code-not-a-boolean", ["task=classify", "trust_code=maybe"], "trust_code=maybe: expected true or false",
     None),
    ("unreadable-run-record", ["task=classify"], "is not a readable run record",
     _file(str(RUN / "run.json"), "{not json")),
    ("run-files-without-a-record", ["task=classify"], "holds eval.csv but no run.json: not a run ML wrote",
     _file(str(RUN / "eval.csv"), "step,score\n0,0.1\n")),
    ("part-the-agent-ignores", ["task=drqv2_states", "Model=CNN"],
     "Model=CNN would be ignored: DrQV2Agent does not build Model", None),
    ("driver-key-on-a-dataset", ["task=classify", "offline=true"],
     "offline=true would be ignored: no part of this task (the supervised driver + ClassifierAgent) reads offline; "
     "it is read by the interactive driver", None),
    ("dataset-key-on-an-env", ["task=dqn", "norm=true"], "norm=true would be ignored", None),
    ("video-of-a-dataset", ["task=classify", "vlog=true"], "vlog=true would be ignored", None),
    ("replay-of-on-policy", ["task=ppo", "replay.capacity=10"], "replay.* would be ignored", None),
    ("key-nothing-reads", ["task=dqn", "+foo=1"], "foo=1 would be ignored: no part of this task", None),
    ("missing-image-folder", ["task=classify", "Dataset=ImageFolder", "+dataset.root=nowhere"],
     "dataset.root=nowhere is not a folder", None),
    ("mnist-without-files", ["task=classify", "Dataset=MNIST"], "MNIST files not found under", None),
    ("malformed-recipe", ["task=broken"], "malformed YAML in recipe", _file("broken.yaml", "a: [1, 2\nb: 3\n")),
    ("recipe-not-a-mapping", ["task=listy"], "must be a mapping of key: value", _file("listy.yaml", "- a\n- b\n")),
    ("recipe-wrong-type", ["task=mine"], "batch_size=lots: expected an integer > 0 (set by recipe mine: fix it",
     _file("mine.yaml", "imports: [classify]\nbatch_size: lots\n")),
    ("recipe-import-cycle", ["task=loop1"], "recipe imports form a cycle",
     lambda root: (_file("loop1.yaml", "imports: [loop2]\n")(root), _file("loop2.yaml", "imports: [loop1]\n")(root))),
    ("corrupt-checkpoint", ["task=classify", "load=true"], "agent.pt holds pickled objects",
     _file(str(RUN / "agent.pt"), b"not a checkpoint at all")),
    ("truncated-checkpoint", ["task=classify", "load=true"], "is corrupt or unreadable", _truncated_checkpoint),
    ("checkpoint-not-found", ["task=classify", "load=no such words"], "no agent.pt under results/", None),
    ("corrupt-replay", ["task=dqn", "offline=true"], "replay.h5",
     _file(str(DQN_RUN / "replay.h5"), b"\x89HDF\r\n\x1a\n but not really")),
    ("results-under-a-file", ["task=classify", "results=blocker/results"], "blocker",
     _file("blocker", "a file, not a folder\n")),
    ("agent-takes-config", ["task=random", "Agent=old_agent.OldAgent"],
     "OldAgent.__init__ takes config, but agents now take settings", _file("old_agent.py", OLD_AGENT)),
]


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ML_DATASETS", str(tmp_path / "datasets"))
    return tmp_path


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def one_line(capsys: pytest.CaptureFixture[str], prefix: str) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in err and len(lines) == 1, err
    assert lines[0].startswith(prefix), err
    return lines[0]


@pytest.mark.parametrize(("argv", "expected", "setup"), [c[1:] for c in CLI], ids=[c[0] for c in CLI])
def test_command_line(workdir: Path, capsys: pytest.CaptureFixture[str], argv: list[str], expected: str,
                      setup: Callable[[Path], None] | None) -> None:
    if setup is not None:
        setup(workdir)
    before = snapshot(workdir)
    code = cli.main([*TINY, *argv])  # the case's own values win
    line = one_line(capsys, "ML: error: ")
    assert code == 2 and expected in line, line
    assert snapshot(workdir) == before


def test_corrupt_eval_csv_in_a_complete_run(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _complete_run_with_bad_eval(workdir)
    before = snapshot(workdir)
    code = plot_cli.main(["experiment=Exp", "baselines=false", "reps=10"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err, err
    assert "Plot: error: " in err and "complete" in err, err
    assert snapshot(workdir) == before


# ML.launch: the same checks from code, as a UserError with the same one line
LAUNCH: list[tuple[str, tuple, dict, str]] = [
    ("positional-not-a-string", (42,), {}, "positional arguments to ML.launch must be 'key=value' strings"),
    ("keyword-wrong-type", (), {"task": "classify", "train_steps": "banana"},
     "train_steps=banana: expected an integer ≥ 0"),
    ("keyword-unknown", (), {"task": "classify", "bach_size": 8}, "unknown key 'bach_size'"),
    ("string-wrong-range", ("task=classify", "lr=0"), {}, "lr=0: expected a number > 0"),
]


@pytest.mark.parametrize(("args", "kwargs", "expected"), [c[1:] for c in LAUNCH], ids=[c[0] for c in LAUNCH])
def test_launch(workdir: Path, monkeypatch: pytest.MonkeyPatch, args: tuple, kwargs: dict, expected: str) -> None:
    monkeypatch.setattr("sys.argv", ["script.py"])  # ML.launch reads a script's command line too
    with pytest.raises(UserError) as error:
        ML.launch(*args, **kwargs, progress=False)
    assert expected in str(error.value) and "\n" not in str(error.value)
    assert snapshot(workdir) == {}


# config.yaml: the grid validation the Snakefile runs first (one line, before any job)
CONFIGS = [
    ("strict-not-boolean", {"strict": "yes", "grid": [{"recipe": "dqn", "suite": "Classic"}]},
     "strict: 'yes' is not of type 'boolean'"),
    ("negative-seed", {"seeds": [-1], "grid": [{"recipe": "dqn", "suite": "Classic"}]}, "seeds[0]: -1 is less than"),
    ("unknown-suite", {"grid": [{"recipe": "dqn", "suite": "Clasic"}]}, "no suite 'Clasic'"),
    ("unknown-key", {"grid": [{"recipe": "dqn", "suite": "Classic", "colour": "red"}]}, "'colour' was unexpected"),
]


@pytest.mark.parametrize(("config", "expected"), [c[1:] for c in CONFIGS], ids=[c[0] for c in CONFIGS])
def test_pipeline_config(config: dict, expected: str) -> None:
    with pytest.raises(grid.ConfigError) as error:
        grid.expand(grid.validate(config))
    assert expected in str(error.value) and "\n" not in str(error.value), str(error.value)


def test_every_engine_setting_is_typed() -> None:
    """Every key of _defaults.yaml and of every built-in recipe has a type (and the defaults pass it)."""
    defaults = recipes.read(recipes.BUILTIN / "_defaults.yaml")
    assert set(defaults) <= set(schema.TYPES) and schema.check(defaults) == defaults
    for path in sorted(recipes.BUILTIN.glob("[!_]*.yaml")):
        config = resolve_config(argv=[f"task={path.stem}"])  # checked as a run would be (raises if wrong)
        assert set(config) <= set(schema.TYPES), path.name
        for part in ("Agent", "Env", "Eyes", "Model", "Aug", "Discriminator"):  # and the parts' arguments
            target = resolve(config[part]) if isinstance(config.get(part), str) else None
            if target is not None and target.__module__.startswith("ML."):
                params = inspect.signature(target).parameters
                schema.check_arguments(params, dict(config[part.lower()]), part, own=True)


# ------------------------------------------------------------------ the disk itself


@contextlib.contextmanager
def mounted(target: Path, options: str) -> Iterator[None]:
    target.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(target)], capture_output=True,
                          text=True, check=False)
    if proc.returncode != 0:
        pytest.skip(f"mounting a tmpfs is not permitted here ({proc.stderr.strip()})")
    try:
        yield
    finally:
        subprocess.run(["umount", "-l", str(target)], check=False)


def test_read_only_results_folder(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with mounted(workdir / "ro", "ro,size=64k"):
        code = cli.main(["task=classify", "results=ro/results", *TINY])
        line = one_line(capsys, "ML: error: ")
        assert code == 2 and "ro/results" in line and "write" in line, line
        assert snapshot(workdir) == {}


def test_full_disk(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with mounted(workdir / "full", "size=64k"):
        (workdir / "full" / "keep.txt").write_text("kept\n")
        before = snapshot(workdir)
        code = cli.main(["task=classify", "results=full/results", "train_steps=50", "evaluate_per_steps=25",
                         "progress=false", "threads=1", "Model=MLP", "+model.hidden_dim=2048"])
        line = one_line(capsys, "ML: error: ")
        assert code == 2 and "space" in line, line
        after = snapshot(workdir)
        assert {k: v for k, v in after.items() if k in before} == before  # what was there is untouched
        assert not [k for k in after if k.endswith(".tmp")]  # no temporary file left behind

