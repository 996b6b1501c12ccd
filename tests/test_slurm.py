"""The SLURM path for real: the workflow submitted through snakemake-executor-plugin-slurm to the single-node
cluster of ``tests/cluster/slurm.sh`` (real sbatch, squeue, sacct, scontrol, slurmdbd accounting), with the
real ``workflow/profiles/slurm``; only its account (and, for speed, the first status check's delay) is set
for the test cluster. ``make test-slurm`` starts the cluster, runs these tests and stops it.

Without a cluster the ``slurm`` tests skip with the reason (they need root to set one up), except in CI
(``CI`` set), where a missing or broken cluster fails the run. The first tests check the sinfo parsing and
fit rules the workflow uses, with no cluster."""

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

from ML.benchmarking import grid
from ML.benchmarking.slurm import Node, misfit, parse_sinfo

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
HARNESS = REPO / "tests" / "cluster" / "slurm.sh"
ACCOUNT = os.environ.get("SLURM_TEST_ACCOUNT", "ci")

slurm = pytest.mark.slurm


def test_sinfo_nodes_and_what_can_never_start():
    nodes = parse_sinfo("cpu|32|128000|(null)\ncpu|16|64000+|(null)\ngpu|8|96000|gpu:a100:4(S:0-1)\nbad line\n")
    assert nodes == {"cpu": Node(16, 64000, 0), "gpu": Node(8, 96000, 4)}  # each partition's smallest node
    assert misfit("job", "cpu", 16, 64000, 0, nodes) is None
    assert "17 CPUs (nodes have 16" in misfit("job", "cpu", 17, 1000, 0, nodes)
    assert "2 GPUs (nodes have 0" in misfit("job", "cpu", 1, 1000, 2, nodes)
    assert "does not have" in misfit("job", "gpu-large", 1, 1000, 0, nodes)
    assert misfit("job", "nowhere", 999, 10**9, 9, {}) is None  # sinfo did not answer: nothing to check


# ---- the real cluster ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def cluster() -> None:
    up = subprocess.run([str(HARNESS), "status"], capture_output=True, text=True)
    if up.returncode == 0:
        return
    reason = f"no SLURM test cluster ({up.stdout.strip()}): start it with `{HARNESS} start` (needs root)"
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


def profile(tmp_path: Path) -> Path:
    """The project's SLURM profile with the test cluster's account and a 2 s first status check."""
    config = yaml.safe_load((REPO / "workflow" / "profiles" / "slurm" / "config.yaml").read_text())
    config["default-resources"]["slurm_account"] = ACCOUNT
    config["slurm-init-seconds-before-status-checks"] = 2
    path = tmp_path / "profile"
    path.mkdir(exist_ok=True)
    (path / "config.yaml").write_text(yaml.safe_dump(config))
    return path


def snakemake_command(work: Path, *args: str) -> list[str]:
    return [str(BIN / "snakemake"), "--snakefile", str(REPO / "workflow" / "Snakefile"), "--directory", str(work),
            "--configfile", str(work / "config.yaml"), "--workflow-profile", str(profile(work)), *args]


def environment() -> dict[str, str]:
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}", "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")}
    env.pop("SLURM_JOB_ID", None)
    return env


def setup(tmp_path: Path, config: dict) -> Path:
    work = tmp_path / "work"
    work.mkdir()
    (work / "config.yaml").write_text(yaml.safe_dump(config))
    return work


def run(work: Path, *args: str, timeout: float = 420) -> subprocess.CompletedProcess:
    return subprocess.run(snakemake_command(work, *args), capture_output=True, text=True, timeout=timeout,
                          env=environment(), cwd=work)


def sacct(*args: str) -> list[dict[str, str]]:
    fields = "JobID,JobName%60,Partition,AllocCPUS,ReqMem,Timelimit,AllocTRES%80,State"
    out = subprocess.run(["sacct", "-X", "-n", "-P", "-o", fields, *args], capture_output=True, text=True,
                         check=True).stdout
    return [dict(zip(fields.replace("%60", "").replace("%80", "").split(","), line.split("|"), strict=True))
            for line in out.splitlines() if line]


def sacct_job(job_id: str, wait: float = 30) -> dict[str, str]:
    """sacct's record of a finished job (accounting lags the controller by a moment)."""
    deadline = time.monotonic() + wait
    while True:
        rows = sacct("-j", job_id)
        if rows and rows[0]["State"] not in ("PENDING", "RUNNING", "REQUEUED"):
            return rows[0]
        if time.monotonic() > deadline:
            raise AssertionError(f"sacct has no finished job {job_id}: {rows}")
        time.sleep(1)


def submitted(log: str) -> list[str]:
    return re.findall(r"has been submitted with SLURM jobid (\d+)", log)


def scontrol_job(job_id: str) -> dict[str, str]:
    out = subprocess.run(["scontrol", "-o", "show", "job", job_id], capture_output=True, text=True).stdout
    return dict(item.split("=", 1) for item in out.split() if "=" in item)


def wait_until(what: str, predicate, timeout: float, proc: subprocess.Popen | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"snakemake ended ({proc.returncode}) while waiting for {what}")
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def stop(proc: subprocess.Popen) -> None:
    """End a snakemake this test started, with its process group (never by name)."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def cell_path(root: Path, kind: str, recipe: str, suite: str, task: str, seed: int, name: str = "") -> Path:
    if kind == "cells":
        return root / "cells" / recipe / suite / task / f"{seed}.json"
    return root / kind / recipe / suite / task / str(seed) / name


SMALL = [("classify", "Classify", "Digits"), ("dqn", "Classic", "CartPole-v1")]
PIXEL = ("drqv2", "DMC", "cartpole_balance")
GRID = {
    "experiment": "grid",
    "seeds": [0, 1],
    "threads": 1,
    "stats": {"reps": 50},
    "grid": [
        {"recipe": "classify", "suite": "Classify", "tasks": ["Digits"],
         "args": {"train_steps": 20, "evaluate_per_steps": 20}},
        {"recipe": "dqn", "suite": "Classic", "tasks": ["CartPole-v1"],
         "args": {"train_steps": 200, "evaluate_per_steps": 100, "evaluate_episodes": 2}},
        # a pixel cell: submitted with a GPU on partition gpu; it fails at once (a bad key) and is recorded
        {"recipe": "drqv2", "suite": "dmc_easy", "tasks": ["cartpole_balance"], "seeds": [0],
         "args": {"no_such_key": 1}},
    ],
}


@slurm
def test_grid_through_sbatch_resources_failed_cell_and_rerun(cluster, tmp_path: Path):
    work = setup(tmp_path, GRID)
    root = work / "results" / "grid"
    first = run(work)
    log = first.stdout + first.stderr
    assert first.returncode == 0, log[-8000:]

    # every train cell ran in a SLURM job with the resources the profile asks for
    small_jobs = set()
    for recipe, suite, task in SMALL:
        for seed in (0, 1):
            status = json.loads(cell_path(root, "cells", recipe, suite, task, seed).read_text())
            assert status["status"] == "complete", status
            small_jobs.add(status["slurm_job"])
    # the 4 small cells and the CartPole baseline: one submission, one node wide (2 CPUs here), 2 x 2000 MB,
    # runtime the sum of its layers (60 + 60 + 20 minutes: 5 jobs, 2 side by side)
    assert len(small_jobs) == 1, small_jobs
    small = sacct_job(small_jobs.pop())
    assert small["JobName"].startswith("UnifiedML_")
    assert (small["Partition"], small["AllocCPUS"], small["ReqMem"], small["Timelimit"], small["State"]) == (
        "cpu", "2", "4000M", "02:20:00", "COMPLETED"), small
    assert "gres/gpu" not in small["AllocTRES"]
    failed = json.loads(cell_path(root, "cells", *PIXEL, 0).read_text())
    assert failed["status"] == "failed" and failed["failures"] == 1 and "no_such_key" in failed["problem"]
    pixel = sacct_job(failed["slurm_job"])
    assert (pixel["Partition"], pixel["AllocCPUS"], pixel["ReqMem"], pixel["Timelimit"]) == (
        "gpu", "1", "16000M", "12:00:00"), pixel
    assert "gres/gpu=1" in pixel["AllocTRES"], pixel
    assert len(submitted(log)) == 2
    assert sorted(re.findall(r"^\s*rule (train\w*):", log, re.M)) == ["train"] + ["train_small"] * 4
    assert "Falling back to 'sacct'" not in log  # squeue answered the status queries

    # scores, statistics, figures and the report from the complete cells, naming the failed one
    for name in ("scores.csv", "stats.csv", "stats.json", "summary.md", "report.html"):
        assert (root / name).stat().st_size > 0, name
    assert list((root / "plots").glob("*.png"))
    cells = pd.read_csv(root / "cells.csv")
    assert sorted(cells.status) == ["complete"] * 4 + ["failed"]
    assert set(pd.read_csv(root / "scores.csv").recipe) == {"classify", "dqn"}

    # the next call reruns exactly the failed cell
    kept = {p: p.read_text() for p in (root / "cells").rglob("*.json") if "drqv2" not in str(p)}
    second = run(work)
    log = second.stdout + second.stderr
    assert second.returncode == 0, log[-8000:]
    assert len(submitted(log)) == 1, log[-8000:]
    assert re.findall(r"^\s*rule (train\w*):", log, re.M) == ["train"]
    assert json.loads(cell_path(root, "cells", *PIXEL, 0).read_text())["failures"] == 2
    assert {p: p.read_text() for p in kept} == kept


PREEMPT = {
    "experiment": "preempt",
    "seeds": [0],
    "threads": 1,
    "grid": [{"recipe": "dqn", "suite": "Classic", "tasks": ["CartPole-v1"],
              "args": {"train_steps": 4000, "evaluate_per_steps": 1000, "evaluate_episodes": 2}}],
}


@slurm
def test_requeued_train_job_resumes_from_its_checkpoint(cluster, tmp_path: Path):
    work = setup(tmp_path, PREEMPT)
    root = work / "results" / "preempt"
    status = cell_path(root, "cells", "dqn", "Classic", "CartPole-v1", 0)
    evals = cell_path(root, "runs", "dqn", "Classic", "CartPole-v1", 0, "eval.csv")
    # the same cell uninterrupted, outside SLURM, beside it
    (cell,) = grid.expand(grid.validate(PREEMPT))
    reference = subprocess.Popen([str(BIN / "ML"), *cell.argv("preempt", str(tmp_path / "reference"), 1)],
                                 cwd=tmp_path, env=environment(), stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    out = open(tmp_path / "snakemake.log", "w")
    proc = subprocess.Popen(snakemake_command(work, str(status.relative_to(work))), cwd=work, env=environment(),
                            stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        job = wait_until("the submission", lambda: submitted((tmp_path / "snakemake.log").read_text()), 120, proc)[0]
        # mid-run (evaluated at step 1000, not finished): requeue it, as a preemption does
        wait_until("evaluations", lambda: evals.is_file() and len(evals.read_text().splitlines()) >= 3, 180, proc)
        subprocess.run(["scontrol", "requeue", job], check=True)
        # a requeued job waits ~2 minutes (BeginTime); let it start now
        wait_until("the job pending again", lambda: scontrol_job(job).get("JobState") == "PENDING", 60, proc)
        subprocess.run(["scontrol", "update", f"JobId={job}", "StartTime=now"], check=True)
        assert proc.wait(300) == 0, (tmp_path / "snakemake.log").read_text()[-8000:]
    finally:
        stop(proc)
        out.close()
    assert reference.wait(300) == 0
    assert scontrol_job(job)["Restarts"] == "1"
    assert [row["State"] for row in sacct("-D", "-j", job)] == ["REQUEUED", "COMPLETED"]  # both attempts
    assert json.loads(status.read_text())["status"] == "complete"
    log = cell_path(root, "logs/train", "dqn", "Classic", "CartPole-v1", 0).with_suffix(".log")
    assert re.search(r"ML: resuming .* from step [1-9]", log.read_text()), log.read_text()[-2000:]
    ref = cell_path(tmp_path / "reference" / "preempt", "runs", "dqn", "Classic", "CartPole-v1", 0, "eval.csv")
    resumed, uninterrupted = pd.read_csv(evals), pd.read_csv(ref)
    assert list(resumed.step) == [0, 1000, 2000, 3000, 4000]
    pd.testing.assert_frame_equal(resumed.drop(columns="time"), uninterrupted.drop(columns="time"))


@slurm
def test_job_cancelled_from_outside_fails_within_bounded_time(cluster, tmp_path: Path):
    config = {**PREEMPT, "experiment": "cancel"}
    config["grid"] = [{**PREEMPT["grid"][0], "args": {"train_steps": 10**6}}]
    work = setup(tmp_path, config)
    status = cell_path(work / "results" / "cancel", "cells", "dqn", "Classic", "CartPole-v1", 0)
    out = open(tmp_path / "snakemake.log", "w")
    # --retries 0: each attempt is bounded alike; the profile's 2 retries would resubmit it twice more
    proc = subprocess.Popen(snakemake_command(work, "--retries", "0", str(status.relative_to(work))), cwd=work,
                            env=environment(), stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        job = wait_until("the submission", lambda: submitted((tmp_path / "snakemake.log").read_text()), 120, proc)[0]
        wait_until("the job running", lambda: scontrol_job(job).get("JobState") == "RUNNING", 120, proc)
        subprocess.run(["scancel", job], check=True)
        cancelled = time.monotonic()
        code = proc.wait(120)
        elapsed = time.monotonic() - cancelled
    finally:
        stop(proc)
        out.close()
    log = (tmp_path / "snakemake.log").read_text()
    assert code != 0, log[-4000:]
    assert re.search(rf"Error in (group small|rule train_small).*\n.*slurm_logs/.*/{job}\.log", log), log[-4000:]
    assert sacct_job(job)["State"].startswith("CANCELLED")
    assert not status.exists()  # a cancelled cell is not recorded as failed: the next call runs it again
    print(f"snakemake failed {elapsed:.0f} s after scancel")


@slurm
def test_job_no_node_can_hold_is_refused_before_submission(cluster, tmp_path: Path):
    nodes = parse_sinfo(subprocess.run(["sinfo", "-h", "-o", "%R|%c|%m|%G"], capture_output=True,
                                       text=True, check=True).stdout)
    config = {**GRID, "experiment": "toobig", "threads": nodes["cpu"].cpus + 1, "grid": GRID["grid"][:1]}
    work = setup(tmp_path, config)
    started = time.monotonic()
    proc = run(work, timeout=120)
    log = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert (f"slurm: a Classify train job asks partition 'cpu' for {nodes['cpu'].cpus + 1} CPUs "
            f"(nodes have {nodes['cpu'].cpus}") in log, log[-4000:]
    assert submitted(log) == [] and time.monotonic() - started < 120
