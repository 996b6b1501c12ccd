"""What the SLURM partitions' nodes can hold, so the workflow never submits a job SLURM can never start.

The executor plugin submits whatever resources a job (or a group of jobs, summed) asks for; a request larger
than every node of its partition pends forever (``Reason=PartitionConfig``) and snakemake waits with it. The
workflow reads the nodes from ``sinfo`` (where it answers), makes a group of small jobs one node wide and
refuses, before any submission, a job that no node of its partition can hold.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass


@dataclass(frozen=True)
class Node:
    """The smallest node of a partition: what one job (or one group job) can at most ask for there."""

    cpus: int
    mem_mb: int
    gpus: int


def _gpus(gres: str) -> int:
    """GPUs in a ``sinfo %G`` field such as ``gpu:2``, ``gpu:a100:4(S:0-1)``, ``(null)``."""
    total = 0
    for item in gres.split(","):
        match = re.match(r"gpu(?::[^:(]+)?:(\d+)", item.strip())
        if match:
            total += int(match.group(1))
    return total


def parse_sinfo(text: str) -> dict[str, Node]:
    """``sinfo -h -o '%R|%c|%m|%G'`` lines → each partition's smallest node (CPUs, MB, GPUs)."""
    nodes: dict[str, Node] = {}
    for line in text.splitlines():
        fields = line.strip().split("|")
        if len(fields) != 4 or not fields[1].rstrip("+").isdigit():
            continue
        name, cpus, mem, gres = fields
        mem_mb = int(re.sub(r"\D.*", "", mem) or 0)
        node = Node(int(cpus.rstrip("+")), mem_mb, _gpus(gres))
        old = nodes.get(name)
        nodes[name] = node if old is None else Node(min(old.cpus, node.cpus), min(old.mem_mb, node.mem_mb),
                                                    min(old.gpus, node.gpus))
    return nodes


def partitions() -> dict[str, Node]:
    """Each partition's smallest node from ``sinfo``; empty where sinfo is missing or does not answer."""
    if shutil.which("sinfo") is None:
        return {}
    try:
        out = subprocess.run(["sinfo", "-h", "-o", "%R|%c|%m|%G"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return {}
    return parse_sinfo(out.stdout) if out.returncode == 0 else {}


def misfit(what: str, partition: str, cpus: int, mem_mb: int, gpus: int, nodes: dict[str, Node]) -> str | None:
    """Why SLURM could never start this request on ``partition`` (one line naming the fix), else None."""
    if not nodes:
        return None  # sinfo did not answer: nothing to check against
    node = nodes.get(partition)
    if node is None:
        return (f"{what} asks for partition {partition!r}, which this cluster does not have (partitions: "
                f"{', '.join(sorted(nodes))}): set slurm_partition in config.yaml resources:")
    wants = []
    if cpus > node.cpus:
        wants.append(f"{cpus} CPUs (nodes have {node.cpus}: lower threads:)")
    if mem_mb > node.mem_mb:
        wants.append(f"{mem_mb} MB (nodes have {node.mem_mb}: lower mem_mb in config.yaml resources:)")
    if gpus > node.gpus:
        wants.append(f"{gpus} GPUs (nodes have {node.gpus}: set gpu or slurm_partition in config.yaml resources:)")
    if not wants:
        return None
    return f"{what} asks partition {partition!r} for {', '.join(wants)}; SLURM could never start it"
