"""How many CPU threads a run's torch ops use: ``threads=N`` as given, else chosen from the agent and the machine.

A small network (DQN's 64-unit MLP on CartPole's 4 numbers) does microseconds of work per op: split over
threads, every op ends with the threads waiting for each other, and on a busy machine a thread that is not
scheduled stalls the rest (DQN on CartPole, 2 busy cores: 83 s with torch's default threads, 2.5 s with
one). Convolutions over images, and MLPs with enough work per update (Digits' 256-unit MLP at batch 64),
gain from more threads, but only on cores no other process is using. ``benchmarks/threads.py`` measures
the choice against every fixed setting, idle and busy; run.json records it (``threads``: the number and why).
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from ML.accelerate import AccelSettings

#: multiply-adds of one update's forward pass (parameters x batch) from which an MLP gains from a second
#: thread on idle cores: Digits' MLP (85k x 64 = 5.4M) runs 1.3x faster on 2 threads, DQN's (4.9k x 128 =
#: 0.6M) slower (benchmarks/threads.py)
WORK_PER_THREAD = 2_000_000


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity: a SLURM job's or a taskset's)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def busy_cores(samples: int = 5) -> int:
    """Processes other than this one running right now (the median of a few reads of /proc/loadavg's
    runnable count, 2 ms apart): the load average lags by a minute, this does not. 0 where unknown."""
    counts = []
    for i in range(samples):
        try:
            with open("/proc/loadavg") as f:
                counts.append(int(f.read().split()[3].split("/")[0]) - 1)  # minus this process
        except (OSError, ValueError, IndexError):
            return 0
        if i + 1 < samples:
            time.sleep(0.002)
    return max(0, int(statistics.median(counts)))


def _work(agent: Any, batch_size: int) -> tuple[bool, int]:
    """Whether the agent has convolutions, and its multiply-adds per update's forward pass (params x batch)."""
    if not isinstance(agent, nn.Module):
        return False, 0
    conv = any(isinstance(m, nn.modules.conv._ConvNd) for m in agent.modules())
    return conv, sum(p.numel() for p in agent.parameters()) * max(batch_size, 1)


def choose(accel: AccelSettings, agent: Any, batch_size: int | None, before: dict[str, Any] | None = None,
           cores: int | None = None, busy: int | None = None) -> dict[str, Any]:
    """run.json's ``threads``: ``{"threads": n, "why": ...}``; ``threads=`` (``accel.threads``) wins.

    ``before`` is a resumed run's own earlier choice, kept: sums split over another number of threads may
    round differently, and a resume must end as the uninterrupted run would. ``cores`` and ``busy`` (the
    machine's usable and busy cores) are read from the machine when None. ``batch_size``: the samples of one
    update (its work).
    """
    if accel.threads:
        return {"threads": int(accel.threads), "why": "threads= given"}
    if before and before.get("threads"):
        why = str(before.get("why", ""))
        why = why if why.startswith("resumed") else f"resumed: kept ({why})"
        return {"threads": int(before["threads"]), "why": why}
    if os.environ.get("OMP_NUM_THREADS"):
        n = max(1, min(torch.get_num_threads(), usable_cores()))
        return {"threads": n, "why": "auto: OMP_NUM_THREADS set"}
    conv, work = _work(agent, int(batch_size or 1))  # the samples of one update
    what = "convolutional agent" if conv else f"MLP agent, {work / 1e6:.1f}M multiply-adds an update"
    if not conv and work < WORK_PER_THREAD:
        return {"threads": 1, "why": f"auto: {what}: too little work per op to share"}
    cores = usable_cores() if cores is None else cores
    busy = busy_cores() if busy is None else busy
    free = max(0, cores - busy)
    n = max(1, min(free, torch.get_num_threads()))  # torch's default: the physical cores
    return {"threads": n, "why": f"auto: {what}; {free} of {cores} cores free"}


@contextmanager
def restored() -> Iterator[None]:
    """torch's thread count as it was before, after the block (``ML.launch`` in a notebook leaves the
    notebook's threads as they were)."""
    previous = torch.get_num_threads()
    try:
        yield
    finally:
        torch.set_num_threads(previous)
