"""The default thread count (no ``threads=``) against every fixed setting, on an idle and on a busy machine.

    .venv/bin/python benchmarks/threads.py [--recipes dqn classify drqv2] [--repeats 1] [--busy-only | --idle-only]

For each recipe a bare ``ML task=<recipe>`` runs in its own process with ``threads=`` unset (the default:
``ML.threads`` chooses from the agent and the machine, run.json says what and why) and with every fixed
setting 1, 2, 4, ... up to the cores this process may use. The rate is of the learning phase alone, from
train.csv's ``time`` column (start-up and evaluation excluded): DQN on CartPole-v1 (steps 1000-3000,
learning from step 1000), Digits classification (updates 100-1000), DrQ-v2 from pixels on DMC
cartpole_balance (batch 256, 10 learning steps (5 updates) after 10 random ones, device cpu).

Busy: the script makes that load itself: one CPU-burning process (``burn``: a busy loop) per core runs in the
background while the busy half is measured (a shared machine where every core has other work); both halves
are measured in one run. Idle means no other work: ``uptime`` is printed before each half, and an idle half
measured under load (1-minute load average above 0.5) says so, to be rerun on a quiet machine (--idle-only).
Prints, per recipe and load, each setting's steps/s, the default's choice, and the ratio best fixed / default
(the target: at most 1.3), and best fixed / the chosen count run as a fixed setting (the same work: what
differs between the two is the machine's noise).
"""

from __future__ import annotations

import argparse
import csv
import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ML = str(Path(sys.executable).with_name("ML"))
# the learning phase of each recipe: the arguments, and the train.csv steps it spans
WORKLOADS = {
    "dqn": (["task=dqn", "train_steps=3000", "log_per_steps=500", "evaluate_episodes=0"], 1000, 3000),
    "classify": (["task=classify", "train_steps=1000", "log_per_steps=100"], 100, 1000),
    "drqv2": (["task=drqv2", "env.task=cartpole_balance", "device=cpu", "agent.learn_start=10",
               "agent.num_expl_steps=10", "train_steps=20", "log_per_steps=10", "replay.save=false",
               "evaluate_episodes=0"], 10, 20),
}
COMMON = ["evaluate_per_steps=0", "save=false", "progress=false"]  # (RL ones also play no evaluation episode)


def cores() -> int:
    return len(os.sched_getaffinity(0))


def fixed_settings() -> list[int]:
    n, out = 1, []
    while n < cores():
        out.append(n)
        n *= 2
    return [*out, cores()]


def measure(recipe: str, threads: int | None) -> tuple[float, dict]:
    """Learning-phase steps/s of one ``ML`` process, and run.json's ``threads`` record."""
    args, start, end = WORKLOADS[recipe]
    with tempfile.TemporaryDirectory() as results:
        command = [ML, *args, *COMMON, f"results={results}", "experiment=threads"]
        if threads is not None:
            command.append(f"threads={threads}")
        env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
        subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL)
        run = next(Path(results).glob("threads/runs/*/*/*/*"))
        rows = {int(r["step"]): float(r["time"]) for r in csv.DictReader((run / "train.csv").open())}
        chosen = json.loads((run / "run.json").read_text())["threads"]
    return (end - start) / (rows[end] - rows[start]), chosen


def uptime() -> str:
    """``uptime``'s line (the load averages: other users' work included)."""
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def burn() -> None:
    while True:
        pass


def compare(recipe: str, repeats: int) -> dict:
    """Each setting's best rate over ``repeats`` rounds (settings alternate within a round)."""
    settings: list[int | None] = [None, *fixed_settings()]
    rates: dict[int | None, float] = {}
    chosen: dict = {}
    for _ in range(repeats):
        for threads in settings:
            rate, record = measure(recipe, threads)
            rates[threads] = max(rates.get(threads, 0.0), rate)
            if threads is None:
                chosen = record
    best = max((t for t in settings if t is not None), key=lambda t: rates[t])
    same = rates.get(chosen["threads"])  # the chosen count run as a fixed setting: the same work, other noise
    return {"rates": rates, "chosen": chosen, "best": best, "ratio": rates[best] / rates[None],
            "ratio_same": None if same is None else rates[best] / same}


def report(recipe: str, load: str, result: dict) -> None:
    """One line; ``load`` also shows the 1-minute load average at its end (other users' work included)."""
    load = f"{load} (load {os.getloadavg()[0]:.1f})"
    fixed = "  ".join(f"{t}: {r:.3g}" for t, r in result["rates"].items() if t is not None)
    print(f"{recipe:9s} {load:16s} steps/s  fixed {fixed}  |  default {result['rates'][None]:.3g} "
          f"({result['chosen']['threads']}, {result['chosen']['why']})  |  best fixed ({result['best']}) / "
          f"default = {result['ratio']:.2f}"
          + ("" if result["ratio_same"] is None
             else f" (/ fixed {result['chosen']['threads']}: {result['ratio_same']:.2f})"),
          flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipes", nargs="+", default=list(WORKLOADS), choices=list(WORKLOADS))
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--idle-only", action="store_true")
    parser.add_argument("--busy-only", action="store_true")
    args = parser.parse_args()
    print(f"{cores()} cores", flush=True)
    worst = 1.0
    for recipe in args.recipes:
        if not args.busy_only:
            print(f"idle half: {uptime()}", flush=True)
            if os.getloadavg()[0] > 0.5:
                print("  note: the machine is not idle (other work is running): rerun these idle rows on a quiet "
                      "machine (--idle-only)", flush=True)
            result = compare(recipe, args.repeats)
            report(recipe, "idle", result)
            worst = max(worst, result["ratio"])
        if not args.idle_only:
            burners = [multiprocessing.Process(target=burn, daemon=True) for _ in range(cores())]
            for b in burners:
                b.start()
            time.sleep(1.0)
            print(f"busy half (+ {len(burners)} burners): {uptime()}", flush=True)
            try:
                result = compare(recipe, args.repeats)
            finally:
                for b in burners:
                    b.terminate()
                    b.join()
            report(recipe, "busy", result)
            worst = max(worst, result["ratio"])
    print(f"worst best-fixed / default: {worst:.2f} (target <= 1.3); at the end: {uptime()}")


if __name__ == "__main__":
    main()
