"""The SLURM profile against the real snakemake-executor-plugin-slurm, with stand-in ``sbatch``, ``squeue``,
``sacct``, ``srun``, ``sinfo`` and ``scontrol`` placed on PATH by this test.

The stand-in ``sbatch`` records its argv, runs the submitted job command locally in the background (as a
cluster would, with ``SLURM_JOB_ID`` set) and prints the job id; ``sacct``/``squeue`` report each recorded
job RUNNING until its command exits, then COMPLETED or FAILED. So the plugin really submits, polls and
collects the jobs, and the test checks the resources and commands it submitted."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

FAKE = textwrap.dedent('''\
    #!{python}
    import json, os, subprocess, sys
    from pathlib import Path

    state = Path(os.environ["FAKE_SLURM_DIR"])
    tool = Path(sys.argv[0]).name
    args = sys.argv[1:]

    def jobs():
        out = []
        for record in sorted(state.glob("job-*.json")):
            try:
                job = json.loads(record.read_text())
            except ValueError:  # being written
                continue
            rc = state / f"rc-{{job['id']}}"
            status = "RUNNING" if not rc.exists() else ("COMPLETED" if rc.read_text().strip() == "0" else "FAILED")
            out.append((job["id"], status))
        return out

    if tool == "sbatch":
        script = sys.stdin.read() if "--wrap" not in " ".join(args) else None
        command, workdir = script, os.getcwd()
        for i, a in enumerate(args):
            if a.startswith("--wrap"):
                command = a.split("=", 1)[1] if "=" in a else args[i + 1]
            if a == "-D":
                workdir = args[i + 1]
        job_id = 1001
        while True:  # claim the next id atomically (the plugin may submit from several threads)
            try:
                fd = os.open(state / f"job-{{job_id}}.json", os.O_CREAT | os.O_EXCL | os.O_WRONLY)
                break
            except FileExistsError:
                job_id += 1
        os.write(fd, json.dumps({{"id": job_id, "argv": args, "command": command}}).encode())
        os.close(fd)
        wrapper = f"({{command}}) > {{state}}/out-{{job_id}}.log 2>&1; echo $? > {{state}}/rc-{{job_id}}"
        env = {{**os.environ, "SLURM_JOB_ID": str(job_id)}}
        subprocess.Popen(["sh", "-c", wrapper], cwd=workdir, env=env, start_new_session=True,
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        print(job_id)
    elif tool in ("sacct", "squeue"):
        for job_id, status in jobs():
            print(f"{{job_id}}|{{status}}")
    elif tool == "srun":
        while args and args[0].startswith("-"):
            args.pop(0)
        os.execvp("sh", ["sh", "-c", " ".join(args)])
    elif tool == "sinfo":
        print("PARTITION\\ncpu*\\ngpu")
    elif tool == "scontrol":
        print("MinJobAge               = 300 sec")
    ''')

GRID = {
    "experiment": "cluster",
    "seeds": [0, 1],
    "threads": 2,
    "stats": {"reps": 50},
    "resources": {"DMC": {"mem_mb": 12000, "runtime": 90}},
    "grid": [
        {"recipe": "classify", "suite": "classify", "tasks": ["Digits"],
         "args": {"train_steps": 20, "evaluate_per_steps": 20}},
        # a pixel-suite cell that fails at once (a bad key): submitted with a GPU, recorded as failed
        {"recipe": "drqv2", "suite": "dmc_easy", "tasks": ["cartpole_balance"], "seeds": [0],
         "args": {"no_such_key": 1}},
    ],
}


def test_slurm_profile_submits_resources_groups_and_commands(tmp_path: Path):
    fake_bin, state = tmp_path / "fakebin", tmp_path / "slurm"
    fake_bin.mkdir()
    state.mkdir()
    for tool in ("sbatch", "sacct", "squeue", "srun", "sinfo", "scontrol"):
        path = fake_bin / tool
        path.write_text(FAKE.format(python=sys.executable))
        path.chmod(0o755)
    work = tmp_path / "work"
    work.mkdir()
    (work / "config.yaml").write_text(yaml.safe_dump(GRID))
    env = {**os.environ, "PATH": f"{fake_bin}:{BIN}:{os.environ['PATH']}", "FAKE_SLURM_DIR": str(state)}
    env.pop("SLURM_JOB_ID", None)
    root = work / "results" / "cluster"
    cells_dir = root.relative_to(work) / "cells"
    targets = [str(cells_dir / "classify" / "Classify" / "Digits" / f"{s}.json") for s in (0, 1)]
    targets.append(str(cells_dir / "drqv2" / "DMC" / "cartpole_balance" / "0.json"))
    command = [str(BIN / "snakemake"), "--snakefile", str(REPO / "workflow" / "Snakefile"), "--directory", str(work),
               "--configfile", str(work / "config.yaml"), "--workflow-profile", str(REPO / "workflow/profiles/slurm"),
               "--slurm-init-seconds-before-status-checks", "1", "--latency-wait", "5", *targets]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=240, env=env, cwd=work)
    log = proc.stdout[-4000:] + proc.stderr[-6000:]
    assert proc.returncode == 0, log

    submitted = [json.loads(p.read_text()) for p in sorted(state.glob("job-*.json"))]
    # two classify cells grouped into one submission + the pixel cell alone
    assert len(submitted) == 2, [s["argv"] for s in submitted]
    calls = {(" ".join(s["argv"])): s for s in submitted}
    pixel = next(s for c, s in calls.items() if "rule_train_wildcards" in c)
    small = next(s for c, s in calls.items() if "rule_train_wildcards" not in c)
    pixel_argv, small_argv = " ".join(pixel["argv"]), " ".join(small["argv"])
    # pixel suite: a GPU, its partition, the config's memory and runtime, CPUs from threads
    assert "--gpus=1" in pixel_argv and "-p gpu" in pixel_argv
    assert "--mem 12000" in pixel_argv and "-t 90" in pixel_argv
    assert "--cpus-per-task=2" in pixel_argv
    # small jobs: grouped, CPU partition, no GPU
    assert "group" in small_argv and "--gpus" not in small_argv and "-p cpu" in small_argv
    assert "--mem" in small_argv and "-t " in small_argv
    # the submitted commands run this workflow's jobs through the slurm-jobstep executor
    assert "slurm-jobstep" in pixel["command"] and "train" in pixel["command"]
    assert small["command"].count("cells/classify/Classify/Digits/") >= 1 or "small" in small["command"]

    # the jobs really ran: both classify cells complete, the broken pixel cell recorded as failed (exit 0)
    for seed in (0, 1):
        status = json.loads((work / targets[seed]).read_text())
        assert status["status"] == "complete", status
        assert (root / "runs" / "classify" / "Classify" / "Digits" / str(seed) / "run.json").is_file()
    failed = json.loads((work / targets[2]).read_text())
    assert failed["status"] == "failed" and failed["failures"] == 1
    assert "no_such_key" in failed["problem"]
    argv = shlex.split(failed["command"])
    assert "Env=DMC" in argv and "env.task=cartpole_balance" in argv and "threads=2" in argv

    # scores from what is complete, naming the failed cell (locally: snakemake's local rules)
    scores = subprocess.run([sys.executable, "-m", "ML.benchmarking.cli", "gather", "--experiment", "cluster",
                             "--results", str(work / "results"), "--cells-out", str(root / "cells.csv"), *targets],
                            capture_output=True, text=True, env=env, cwd=work)
    assert scores.returncode == 0, scores.stderr
    cells = pd.read_csv(root / "cells.csv")
    assert sorted(cells.status) == ["complete", "complete", "failed"]
