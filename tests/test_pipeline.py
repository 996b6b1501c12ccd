"""The real snakemake on the real workflow: dry run of the default grid, config errors, and a tiny end-to-end
run (real ``ML`` train jobs, one cell failing) followed by ``snakemake plots``, the rerun of the failed cell
alone, and a forced rerun of one cell."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from ML.benchmarking import grid, plots, stats

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SNAKEFILE = REPO / "workflow" / "Snakefile"


def snakemake(workdir: Path, *args: str, configfile: Path | None = None, timeout: float = 600):
    command = [str(BIN / "snakemake"), "--snakefile", str(SNAKEFILE), "--directory", str(workdir),
               "--configfile", str(configfile or workdir / "config.yaml"), *args]
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}"}
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env, cwd=workdir)


def job_counts(output: str) -> dict[str, int]:
    """The 'Job stats' table of snakemake's output as {rule: count}."""
    table = output.split("Job stats:", 1)[1]
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M) if m[1] != "total"}


def test_default_grid_dry_run(tmp_path: Path):
    proc = snakemake(tmp_path, "-n", configfile=REPO / "config.yaml")
    assert proc.returncode == 0, proc.stderr
    counts = job_counts(proc.stdout + proc.stderr)
    # classify x Digits x 3 seeds + {dqn, dqn_nstep1} x {CartPole-v1, Acrobot-v1} x 3 seeds + dqn together x 3
    assert counts["train_small"] == 18 and "train" not in counts  # no pixel suite in the default grid
    assert counts["baseline_classic"] == 2
    for rule in ("scores", "stats", "figures", "report"):
        assert counts[rule] == 1
    config = grid.validate(yaml.safe_load((REPO / "config.yaml").read_text()))
    cells = grid.expand(config)
    assert len(cells) == 18 and config["experiment"] == "default"
    shared = [c for c in cells if c.together]
    assert [c.task for c in shared] == ["CartPole-v1+Acrobot-v1"] * 3 and "train_steps=100000" in shared[0].args
    # two recipes share the Classic suite, so summary.md has a verdict
    assert {c.recipe for c in cells if c.env == "Classic"} == {"dqn", "dqn_nstep1"}


BAD = [
    ("seeds: oops\ngrid: [{recipe: dqn, suite: Classic}]\n", "seeds: 'oops' is not of type 'array'"),
    ("grid: [{recipe: dqn, suite: Classic, colour: red}]\n", "'colour' was unexpected"),
    ("grid: [{recipe: dqn}]\n", "'suite' is a required property"),
    ("grid: [{recipe: dqn, suite: Clasic}]\n", "grid[0].suite: no suite 'Clasic'"),
    ("grid: [{recipe: dqn, suite: Classic, tasks: [CartPol-v1]}]\n", "CartPol-v1 not in suite classic"),
    ("stats: {reps: 0}\ngrid: [{recipe: dqn, suite: Classic}]\n", "stats.reps: 0 is less than the minimum"),
    ("experiment: baselines\ngrid: [{recipe: dqn, suite: Classic}]\n", "'baselines' is reserved"),
    ("grid: [{recipe: dqn, suite: Classic}, {recipe: dqn, suite: classic, tasks: [Acrobot-v1]}]\n",
     "appears twice"),
    ("grid: [{recipe: classify, suite: Classic, together: [CartPole-v1, Acrobot-v1]}]\n",
     "grid[0].together: recipe classify has Agent ClassifierAgent; only DQNAgent (not dueling) trains tasks together"),
]


@pytest.mark.parametrize(("text", "expected"), BAD)
def test_bad_config_messages(text: str, expected: str):
    with pytest.raises(grid.ConfigError) as error:
        grid.expand(grid.validate(yaml.safe_load(text)))
    assert expected in str(error.value) and "\n" not in str(error.value)


@pytest.mark.parametrize(("text", "expected"), [BAD[0], BAD[3], BAD[-1]])
def test_bad_config_stops_snakemake_with_one_line(tmp_path: Path, text: str, expected: str):
    (tmp_path / "config.yaml").write_text(text)
    proc = snakemake(tmp_path, "-n")
    assert proc.returncode != 0
    errors = [line for line in (proc.stdout + proc.stderr).splitlines() if line.startswith("config error:")]
    assert len(errors) == 1 and expected in errors[0], proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr and "File " not in proc.stderr
    assert not (tmp_path / "results").exists()


TINY = {
    "experiment": "e2e",
    "seeds": [0, 1],
    "threads": 1,
    "stats": {"reps": 200, "seed": 0},
    "grid": [
        {"recipe": "classify", "suite": "classify", "tasks": ["Digits"],
         "args": {"train_steps": 40, "evaluate_per_steps": 20}},
        {"recipe": "dqn", "suite": "Classic", "tasks": ["CartPole-v1"], "seeds": [0],
         "args": ["train_steps=200", "evaluate_per_steps=100", "evaluate_episodes=2", "agent.learn_start=50"]},
        # MountainCar-v0 alone at 200 steps, and trained together with CartPole-v1 at 400 = 2 x 200 (each episode
        # to the task with the fewest frames): the summary compares each task together vs alone at its own frames
        {"recipe": "dqn", "suite": "Classic", "tasks": ["MountainCar-v0"], "seeds": [0],
         "args": ["train_steps=200", "evaluate_per_steps=100", "evaluate_episodes=2", "agent.learn_start=50"]},
        {"recipe": "dqn", "suite": "Classic", "together": ["CartPole-v1", "MountainCar-v0"], "seeds": [0],
         "args": ["train_steps=400", "evaluate_per_steps=100", "evaluate_episodes=2", "agent.learn_start=50",
                  "together_schedule=proportional"]},
        # the default grid's second recipe on Classic: summary.md gets a verdict
        {"recipe": "dqn_nstep1", "suite": "Classic", "tasks": ["CartPole-v1"], "seeds": [0],
         "args": ["train_steps=200", "evaluate_per_steps=100", "evaluate_episodes=2", "agent.learn_start=50"]},
        # fails at once (no such recipe): recorded, named in the summary, never blocks the rest
        {"recipe": "nosuchrecipe", "suite": "classify", "tasks": ["Digits"], "seeds": [0]},
    ],
}


def test_end_to_end_tiny_grid(tmp_path: Path):
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(TINY))
    root = tmp_path / "results" / "e2e"
    start = time.monotonic()
    proc = snakemake(tmp_path, "--cores", "2")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    counts = job_counts(proc.stdout + proc.stderr)
    assert counts["train_small"] == 7 and counts["baseline_classic"] == 2
    print(f"end-to-end: {time.monotonic() - start:.1f} s")

    runs = sorted(root.glob("runs/*/*/*/*/run.json"))
    assert sorted(str(p.relative_to(root).parent) for p in runs) == [
        "runs/classify/Classify/Digits/0", "runs/classify/Classify/Digits/1",
        "runs/dqn/Classic/CartPole-v1+MountainCar-v0/0", "runs/dqn/Classic/CartPole-v1/0",
        "runs/dqn/Classic/MountainCar-v0/0", "runs/dqn_nstep1/Classic/CartPole-v1/0"]
    for task in ("CartPole-v1", "MountainCar-v0"):  # the together cell's tasks' baselines
        assert (tmp_path / "results" / "baselines" / "Classic" / f"{task}.json").is_file()
    failed = json.loads((root / "cells" / "nosuchrecipe" / "Classify" / "Digits" / "0.json").read_text())
    assert failed["status"] == "failed" and failed["failures"] == 1 and "nosuchrecipe" in failed["problem"]

    scores = pd.read_csv(root / "scores.csv")
    assert list(scores.columns) == ["experiment", "recipe", "suite", "task", "seed", "step", "frame", "time",
                                    "score", "normalized"]
    assert set(scores.experiment) == {"e2e"} and "nosuchrecipe" not in set(scores.recipe)
    assert sorted(scores[scores.recipe == "classify"].step.unique()) == [0, 20, 40]
    assert scores.normalized.notna().all()  # every suite here has a reference, tasks trained together too
    shared = scores[scores.recipe == "dqn (together: CartPole-v1+MountainCar-v0)"]
    assert set(shared.task) == {"CartPole-v1", "MountainCar-v0"} and shared.frame.max() == 200  # 400 / 2 tasks
    assert "CartPole-v1+MountainCar-v0" not in set(scores.task)
    digits = scores[scores.task == "Digits"]
    assert ((digits.score - 0.1) / 0.9 - digits.normalized).abs().max() < 1e-9
    cells = pd.read_csv(root / "cells.csv").set_index("recipe")
    assert cells.loc["nosuchrecipe", "status"] == "failed" and (cells.status == "complete").sum() == 6

    table = stats.read_stats(root / "stats.csv")
    assert set(table.metric) == set(stats.METRICS)
    assert {"final", "0"} <= set(table.step) and set(table.suite) == {"Classic", "Classify"}
    provenance = json.loads((root / "stats.json").read_text())
    assert provenance["final_window"] == 0.1 and "last 10%" in provenance["final_score"]
    assert provenance["reps"] == 200
    for name in ("profiles.csv", "comparisons.csv", "final_scores.csv", "final_scores.md", "summary.md"):
        assert (root / name).is_file(), name
    summary = (root / "summary.md").read_text()
    assert "nosuchrecipe/Classify/Digits/0: **failed**" in summary
    assert "On Classic, dqn" in summary and "P(dqn > dqn_nstep1) = " in summary  # a verdict
    cartpole = cells[cells.task == "CartPole-v1"]
    assert "## Protocols" in summary and json.loads(cartpole.loc["dqn", "protocol"])["frame_budget"] == 200
    assert provenance["protocols"]["Classic"]["dqn_nstep1"]["eval_episodes"] == 2
    names = set(plots.figure_files(["Classic", "Classify"]))
    assert {p.name for p in (root / "plots").iterdir()} == names
    report = (root / "report.html").read_text(errors="replace")
    assert "aggregate_iqm.png" in report and "performance_profile.png" in report and "summary.md" in report
    # one seed each: no verdict, and the report opens on that (metadata given: not on the workflow graph)
    assert "not enough runs for a verdict (n = 1 each; need ≥ 3)" in summary and "is better than" not in summary
    assert re.search(r'var metadata = \{"complete runs": 6, ', report)
    # the together cell: one row per task, together vs alone, one seed (and frames within an episode of 200 each):
    # no verdict
    together = pd.read_csv(root / "together.csv").set_index("task")
    assert set(together.index) == {"CartPole-v1", "MountainCar-v0"} and set(together.verdict) == {"cannot be told"}
    assert set(together.why) <= {"n = 1 each; need ≥ 3", "different budgets"}
    assert "## Together vs alone" in summary and summary.index("## Verdicts") < summary.index("## Together vs alone")
    assert "On MountainCar-v0 (Classic), dqn trained together with CartPole-v1: cannot be told" in summary
    first = json.loads(re.search(r"var workflow_desc = (\".*\");\n", report)[1])
    assert first.index("Verdicts") < first.index("not enough runs for a verdict") < first.index("Together vs alone") \
        < first.index("data:image/png")

    # the failed cell, and only it (then what depends on it), is retried by the next call
    proc = snakemake(tmp_path, "--cores", "2", "-n")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert job_counts(proc.stdout + proc.stderr) == {
        "train_small": 1, "scores": 1, "stats": 1, "figures": 1, "report": 1, "all": 1}
    assert "recipe=nosuchrecipe" in proc.stdout + proc.stderr

    # once the grid no longer holds the broken cell, nothing is left to do... but its removal changes the
    # scores' inputs, so aggregate once more; then nothing at all
    config = {**TINY, "grid": [entry for entry in TINY["grid"] if entry["recipe"] != "nosuchrecipe"]}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    proc = snakemake(tmp_path, "--cores", "2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "train_small" not in job_counts(proc.stdout + proc.stderr)
    proc = snakemake(tmp_path, "--cores", "2", "-n")
    assert proc.returncode == 0 and "Nothing to be done" in proc.stdout + proc.stderr

    # `snakemake plots` redraws from the existing results without training
    mtimes = {p: p.stat().st_mtime_ns for p in runs}
    (root / "plots" / "aggregate_iqm.png").unlink()
    proc = snakemake(tmp_path, "--cores", "2", "plots")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert job_counts(proc.stdout + proc.stderr) == {"plots": 1}
    assert (root / "plots" / "aggregate_iqm.png").is_file()
    assert {p: p.stat().st_mtime_ns for p in runs} == mtimes

    # forcing one cell reruns that cell alone, then the aggregation downstream (dry run: the plan)
    forced = root / "cells" / "dqn" / "Classic" / "CartPole-v1" / "0.json"
    proc = snakemake(tmp_path, "--cores", "2", "-n", "--forcerun", str(forced.relative_to(tmp_path)))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert job_counts(proc.stdout + proc.stderr) == {
        "train_small": 1, "scores": 1, "stats": 1, "figures": 1, "report": 1, "all": 1}
    assert "wildcards: recipe=dqn, suite=Classic, task=CartPole-v1, seed=0" in proc.stdout + proc.stderr


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _descendants(root: int) -> list[int]:
    """Every live process below ``root`` (from /proc's parent ids)."""
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    out, todo = [], [root]
    while todo:
        children = parents.get(todo.pop(), [])
        out += children
        todo += children
    return out


def test_a_job_killed_outright_still_gets_the_complete_cells_reported(tmp_path: Path):
    """A cell whose job dies (SIGKILL: a scheduler's time or memory kill) fails the workflow; the onerror
    handler still aggregates the complete cells, into partial/ (the pipeline's own outputs stay missing, so the
    next call trains the dead cell), and names the dead one."""
    experiment = f"killed{os.getpid()}"
    config = {"experiment": experiment, "seeds": [0], "threads": 1, "stats": {"reps": 50, "seed": 0},
              "grid": [{"recipe": "classify", "suite": "classify", "tasks": ["Digits"],
                        "args": {"train_steps": 20, "evaluate_per_steps": 10}},
                       {"recipe": "dqn", "suite": "Classic", "tasks": ["CartPole-v1"],
                        "args": ["train_steps=1000000", "evaluate_per_steps=1000000", "evaluate_episodes=1"]}]}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    command = [str(BIN / "snakemake"), "--snakefile", str(SNAKEFILE), "--directory", str(tmp_path),
               "--configfile", str(tmp_path / "config.yaml"), "--cores", "2", "--keep-going"]
    # its own session: whatever happens, the test ends every process it started and no other
    proc = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}"}, start_new_session=True)
    try:
        pattern = f"env.task=CartPole-v1 seed=0 experiment={experiment} "
        eval_csv = tmp_path / "results" / experiment / "runs/dqn/Classic/CartPole-v1/0/eval.csv"
        deadline = time.time() + 120
        while not eval_csv.exists() and time.time() < deadline:  # the DQN cell is training
            time.sleep(0.2)
        job = [pid for pid in _descendants(proc.pid) if pattern in _cmdline(pid)]  # its wrapper and ML
        if not job:
            pytest.fail(f"no process of this snakemake matched {pattern!r}")
        for pid in job:
            os.kill(pid, signal.SIGKILL)
        out, _ = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode != 0, out
    root = tmp_path / "results" / experiment
    summary = (root / "partial" / "summary.md").read_text()
    assert "dqn/Classic/CartPole-v1/0" in summary and "classify" in summary
    assert set(pd.read_csv(root / "partial" / "scores.csv")["recipe"]) == {"classify"}
    assert not (root / "summary.md").exists() and not (root / "scores.csv").exists()
    assert "Not finished: 1 of 2 cells complete" in out


def test_strict_exits_nonzero_when_a_cell_failed(tmp_path: Path):
    """Default: the run keeps going and names the failed cell, exit 0; `strict: true`: the same grid, the
    failed cell retried and failed again, aggregates the rest and exits 1 naming it."""
    config = {"experiment": "strict", "seeds": [0], "stats": {"reps": 20, "seed": 0},
              "grid": [{"recipe": "classify", "suite": "classify", "tasks": ["Digits"],
                        "args": {"train_steps": 4, "evaluate_per_steps": 2}},
                       {"recipe": "nosuchrecipe", "suite": "classify", "tasks": ["Digits"]}]}
    target = "results/strict/cells.csv"
    named = "cell(s) failed"
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    proc = snakemake(tmp_path, "--cores", "2", target)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"1 {named}" in proc.stderr and "cells/nosuchrecipe/Classify/Digits/0.json" in proc.stderr

    (tmp_path / "config.yaml").write_text(yaml.safe_dump({**config, "strict": True}))
    proc = snakemake(tmp_path, "--cores", "2", target)
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert f"1 {named}" in proc.stderr and "strict: true" in proc.stderr
    cells = pd.read_csv(tmp_path / target).set_index("recipe")
    assert cells.loc["nosuchrecipe", "status"] == "failed" and cells.loc["classify", "status"] == "complete"
