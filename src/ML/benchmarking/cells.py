"""Grid cells and their status: the pipeline's train wrapper and ``cells.csv``.

The train rule's declared output is a small status file per cell, ``<root>/<exp>/cells/<recipe>/<suite>/
<task>/<seed>.json``, written whether ``ML`` succeeds or fails, so one failed cell never blocks the scores,
statistics and figures of the others. A failure raises the file's ``failures`` count, which is also the
train rule's ``failures`` param: on the next ``snakemake`` call the param differs from the one recorded
for the last attempt, so snakemake reruns exactly the failed cells (``ML`` resumes an unfinished run by
itself); a complete cell keeps its count and is not rerun. A cell stopped by a signal (^C, SIGTERM from
a scheduler) writes no status file and exits 128 + the signal: snakemake counts it not done, and the same
command runs it again, which resumes it. The run directory is no declared output, so snakemake never
deletes it.

    python -m ML.benchmarking.cli train --status S.json --run-dir RUN --log LOG --failures 0 -- ML task=...
"""

from __future__ import annotations

import datetime
import json
import os
import signal
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from ML import layout, runinfo
from ML.benchmarking import scores, together
from ML.fileio import read_json, write_json

COLUMNS = ["experiment", "recipe", "suite", "task", "seed", "status", "reason", "protocol", "reference", "differences",
           "frames", "task_protocols"]


def read_status(path: str | Path) -> dict[str, Any]:
    return read_json(path) or {}


def failures(path: str | Path) -> int:
    """How many attempts of this cell have failed so far (0 when it never ran)."""
    try:
        return int(read_status(path).get("failures", 0))
    except (TypeError, ValueError):
        return 0


def _tail(path: Path, lines: int = 3) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " | ".join(line.strip() for line in text[-lines:])


#: stop signals: passed on to ML, which checkpoints and exits 128 + the signal (ML.stops)
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _run(command: list[str], out: Any) -> tuple[int, int | None]:
    """Run ``command``; a stop signal to this wrapper (^C in the terminal, a scheduler preempting, cancelling
    or requeueing the job) is passed on, so ML checkpoints and exits. Returns the exit code and the signal, if
    this wrapper got one."""
    child = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    received: list[int] = []

    def forward(signum: int, frame: Any) -> None:
        received.append(signum)
        child.send_signal(signum)

    previous = {s: signal.signal(s, forward) for s in STOP_SIGNALS}
    try:
        return child.wait(), (received[0] if received else None)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def stop_signal(code: int, received: int | None) -> int | None:
    """The stop signal that ended ML: one this wrapper passed on, or ML's own exit status saying so
    (128 + the signal after its checkpoint; minus the signal when one ended it before its loop began)."""
    if received is not None:
        return received
    for s in STOP_SIGNALS:
        if code in (128 + s, -s):
            return int(s)
    return None


def train(command: list[str], status: Path, run_dir: Path, log: Path, previous_failures: int) -> dict[str, Any]:
    """Run ``command`` (an ``ML`` call) with its output in ``log``, then record the cell's status.

    Stopped by a signal before its run completed, the cell did not fail: nothing is recorded (so snakemake
    counts the cell not done, and the same command runs it again; ML resumes it from its checkpoint), and the
    returned record says ``interrupted``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    started = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    with open(log, "w") as out:
        code, received = _run(command, out)
    stopped = stop_signal(code, received)
    problem = scores.check(run_dir / "run.json") if code == 0 or stopped else \
        f"ML exited with code {code}: {_tail(log)}"
    if stopped and problem is not None:
        return {"status": "interrupted", "signal": signal.Signals(stopped).name, "returncode": 128 + stopped}
    ok = problem is None
    record = {"status": "complete" if ok else "failed", "failures": previous_failures + (0 if ok else 1),
              "returncode": code, "problem": problem, "run_dir": str(run_dir), "log": str(log),
              "started": started, "ended": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
              "command": " ".join(command)}
    if os.environ.get("SLURM_JOB_ID"):  # the SLURM job that ran it: sacct -j <id>
        record["slurm_job"] = os.environ["SLURM_JOB_ID"]
    write_json(status, record)
    return record


def table(run_jsons: Iterable[str | Path], statuses: dict[Path, Path] | None = None) -> pd.DataFrame:
    """cells.csv: one row per cell (every run.json given): complete / incomplete / killed / failed / missing.

    ``statuses`` maps a run.json to the pipeline's status file of its cell (a failed attempt names its
    problem there); without it the run.json alone decides."""
    records = []
    for run_json in map(Path, run_jsons):
        info = read_json(run_json)
        status_file = (statuses or {}).get(run_json)
        recorded = read_status(status_file) if status_file is not None else {}
        ident = scores.identity(run_json, info or {})
        if info is not None and info.get("status") == "complete":
            state, reason = "complete", ""
        elif recorded.get("status") == "failed":
            state, reason = "failed", str(recorded.get("problem") or "")
        elif info is None:
            state, reason = "missing", f"no run.json in {run_json.parent}"
        elif runinfo.status(info) == "killed":
            state, reason = "killed", (f"run.json says running but its heartbeat stopped at {info.get('heartbeat')}; "
                                       "the same command resumes it")
        else:
            state, reason = "incomplete", f"run.json status {info.get('status')!r}"
        frames = float("nan")
        evals = run_json.parent / "eval.csv"
        if state == "complete" and evals.is_file():
            try:
                frames = float(pd.read_csv(evals, usecols=["frame"])["frame"].max())
            except (ValueError, OSError, pd.errors.EmptyDataError):
                pass
        card = (info or {}).get("protocol") or {}  # run.json's protocol card (ML.runinfo.protocol_card)
        reference = card.get("reference") or {}  # the nearest published configuration (ML.published.compare)
        tasks = together.task_cards(info)  # tasks trained together: each task's own card, by task
        records.append({**ident, "status": state, "reason": reason,
                        "protocol": json.dumps(card, sort_keys=True) if card else "",
                        "reference": reference.get("reference", ""),
                        "differences": "; ".join(reference.get("differences") or ()), "frames": frames,
                        "task_protocols": json.dumps(tasks, sort_keys=True) if tasks else ""})
    return pd.DataFrame.from_records(records, columns=COLUMNS)


def run_json_of(status: str | Path) -> Path:
    """A cell status file → its run's run.json (``ML.layout``)."""
    return layout.run_of_status(status) / "run.json"
