"""Published protocols live in the suites: the grid gives every DMC cell DrQ-v2's settings for its
difficulty and task (facebookresearch/drqv2 cfgs/task/*.yaml), Atari-100k cells the Atari-100k protocol,
and a grid entry's own args win. Bad suites and protocols stop with one line."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
import yaml

from ML.benchmarking import grid
from tests.test_pipeline import snakemake

# DrQ-v2's table: difficulty -> (num_train_frames, std schedule); per-task values over the difficulty's
DIFFICULTY = {"easy": (1_100_000, "linear(1.0,0.1,100000)"), "medium": (3_100_000, "linear(1.0,0.1,500000)"),
              "hard": (30_100_000, "linear(1.0,0.1,2000000)")}
PER_TASK = {
    **{t: {"lr": 8e-5, "agent.feature_dim": 100} for t in ("humanoid_stand", "humanoid_walk", "humanoid_run")},
    **{t: {"agent.n_step": 1, "batch_size": 512} for t in ("walker_stand", "walker_walk", "walker_run")},
    "quadruped_run": {"replay.capacity": 100_000},
}
PER_TASK_KEYS = {k for v in PER_TASK.values() for k in v}


def _args(cell: grid.Cell) -> dict:
    args = {}
    for token in shlex.split(cell.shell_args("e", "results", 1)):
        key, _, value = token.partition("=")
        args[key.lstrip("+")] = yaml.safe_load(value)
    return args


@pytest.mark.parametrize("difficulty", ["easy", "medium", "hard"])
def test_every_dmc_cell_runs_drqv2_protocol(difficulty: str) -> None:
    config = grid.validate({"seeds": [0], "grid": [{"recipe": "drqv2", "suite": f"dmc_{difficulty}"}]})
    cells = grid.expand(config)
    frames, std = DIFFICULTY[difficulty]
    assert len(cells) == len(grid.load_suite(f"dmc_{difficulty}").tasks) >= 3
    for cell in cells:
        args = _args(cell)
        assert args["train_steps"] * args["env.action_repeat"] == frames, cell.task
        assert args["agent.stddev_schedule"] == std and args["env.frame_stack"] == 3
        assert args["evaluate_per_steps"] * 2 == 10_000 and args["evaluate_episodes"] == 10
        own = PER_TASK.get(cell.task, {})
        assert {k: float(args[k]) for k in own} == {k: float(v) for k, v in own.items()}, cell.task
        assert not (PER_TASK_KEYS - set(own)) & set(args), f"{cell.task} got another task's settings"
        # one key=value per key, so the dry run shows exactly what runs
        keys = [t.split("=", 1)[0] for t in shlex.split(cell.shell_args("e", "results", 1))]
        assert len(keys) == len(set(keys))


def test_grid_entry_args_win_over_the_protocol() -> None:
    config = grid.validate({"seeds": [0], "grid": [
        {"recipe": "drqv2", "suite": "dmc_easy", "tasks": ["walker_walk"], "args": {"batch_size": 64,
                                                                                    "train_steps": 10}}]})
    args = _args(grid.expand(config)[0])
    assert (args["batch_size"], args["train_steps"], args["agent.n_step"]) == (64, 10, 1)


def test_atari26_cells_run_the_atari100k_protocol() -> None:
    config = grid.validate({"seeds": [0], "grid": [{"recipe": "dqn_atari", "suite": "atari26"}]})
    cells = grid.expand(config)
    assert len(cells) == 26
    for cell in cells:
        args = _args(cell)
        assert (args["env.protocol"], args["train_steps"], args["evaluate_episodes_final"]) == \
            ("atari100k", 100_000, 100)


def test_dry_run_prints_the_protocol(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text(
        "seeds: [0]\ngrid: [{recipe: drqv2, suite: dmc_hard, tasks: [humanoid_run]}]\n")
    proc = snakemake(tmp_path, "-n", "-p", "--forceall", "results/default/cells/drqv2/DMC/humanoid_run/0.json")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout + proc.stderr
    for shown in ("train_steps=15050000", "'agent.stddev_schedule=linear(1.0,0.1,2000000)'", "lr=8e-05",
                  "agent.feature_dim=100"):
        assert shown in out


def _suite(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "mysuite.yaml"
    path.write_text(text)
    return path


BAD = [
    ("env: DMC\nprotocol: drqv2\ndifficulty: extreme\ntasks: [cheetah_run]\n", "unknown difficulty 'extreme'"),
    ("env: DMC\nprotocol: drqv3\ndifficulty: easy\ntasks: [cheetah_run]\n", "unknown protocol 'drqv3'"),
    ("env: DMC\nprotocol: drqv2\ntasks: [cheetah_run]\n", "give the suite a difficulty"),
    ("env: DMC\ndifficulty: easy\ntasks: [cheetah_run]\n", "needs a protocol"),
    ("env: DMC\nprotocol: drqv2\ndifficulty: easy\ntasks: [cheetah_run]\ntask_args: {walker_run: {lr: 1}}\n",
     "task_args names walker_run, not in the suite's tasks"),
]


@pytest.mark.parametrize(("text", "expected"), BAD)
def test_bad_suite_is_one_line(tmp_path: Path, text: str, expected: str) -> None:
    path = _suite(tmp_path, text)
    with pytest.raises(grid.ConfigError) as error:
        grid.expand(grid.validate({"grid": [{"recipe": "drqv2", "suite": str(path)}]}))
    assert expected in str(error.value) and "\n" not in str(error.value)


def test_bad_suite_stops_snakemake_with_exit_2(tmp_path: Path) -> None:
    path = _suite(tmp_path, BAD[0][0])
    (tmp_path / "config.yaml").write_text(f"grid: [{{recipe: drqv2, suite: {path}}}]\n")
    proc = snakemake(tmp_path, "-n")
    errors = [line for line in (proc.stdout + proc.stderr).splitlines() if line.startswith("config error:")]
    assert len(errors) == 1 and "unknown difficulty 'extreme'" in errors[0], proc.stdout + proc.stderr
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert not (tmp_path / "results").exists()
