"""Data-parallel training across processes: ``world_size=N`` (or, with ``accelerate=true``, every GPU)."""

from __future__ import annotations

import io
import os
import socket
import tempfile
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from ML import ranks
from ML.accelerate import AccelSettings

#: the last distributed run of this process: world size, backend and the ranks' largest parameter gap
last_run: dict[str, Any] = {}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _worker(rank: int, config: Any, command: list[str], world: int, port: int, out: str) -> None:
    from ML import run
    from ML.blocks.network import config_device
    from ML.hyperparams import Config

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    config = Config(config)  # each rank's own copy: its device, its scratch run directory, the scaled lr
    accel = AccelSettings.from_config(config)
    device = config_device(accel)
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(rank)
        config["device"] = f"cuda:{rank}"
    dist.init_process_group(backend, rank=rank, world_size=world)
    scratch = None
    try:
        config["resume"] = False
        if str(accel.lr_scaling or "").lower() == "linear":
            config["lr"] = float(config["lr"]) * world
        if rank != 0:  # only rank 0 writes the run directory
            scratch = tempfile.mkdtemp(prefix=f"ml-rank{rank}-")
            config.update(run_dir=scratch, progress=False, wandb=False)
            import sys

            sys.stdout = open(os.devnull, "w")  # one rank reports progress
        agent = run.train(config, command)
        params = torch.cat([p.detach().reshape(-1).cpu().float() for p in agent.parameters()]).numpy()
        blob = None
        if rank == 0:
            buffer = io.BytesIO()
            torch.save(agent, buffer)
            blob = buffer.getvalue()
        torch.save({"params": params, "agent": blob, "backend": backend}, os.path.join(out, f"rank{rank}.pt"))
        dist.barrier()
    finally:
        dist.destroy_process_group()
        if scratch:
            import shutil

            shutil.rmtree(scratch, ignore_errors=True)


def launch(config: Any, command: list[str]) -> Any:
    """Run ``config`` on ``world_size(config)`` processes; return rank 0's trained agent.

    ``ML.entry.start`` hands a run with ``world_size > 1`` to ``launch``: N processes (``torch.multiprocessing``,
    forked where possible), one per GPU with NCCL, or N CPU processes with gloo. Every process runs the same
    ``train`` with the same seed; agents wrap their networks in ``DistributedDataParallel`` (the classifier)
    or all-reduce their gradients after each backward (the GAN, whose discriminator runs several forwards
    per backward), so the ranks hold the same parameters at every step.

    * **Data**: each rank takes its own ``batch_size`` slice of every global batch: the effective batch size
      is ``batch_size × world_size``, and ``frame`` in the logs counts samples of all ranks.
    * **Learning rate**: left as given by default (the effective batch is larger); ``lr_scaling=linear``
      multiplies ``lr`` by ``world_size`` (the linear scaling rule of Goyal et al., 2017), recorded in
      ``run.json``'s config.
    * **Files**: rank 0 alone writes the run directory (logs, ``agent.pt``, ``run.json``); the other ranks
      write into temporary folders that are deleted when they finish.
    * **Resume**: a distributed run starts fresh (``resume`` is ignored; run.json says ``resume_exact: false``);
      ``load=`` a checkpoint still works.
    """
    import torch.multiprocessing as mp

    world = ranks.world_size(AccelSettings.from_config(config))
    fork = "fork" in mp.get_all_start_methods() and not torch.cuda.is_initialized()
    method = "fork" if fork else "spawn"
    with tempfile.TemporaryDirectory(prefix="ml-ddp-") as out:
        mp.start_processes(_worker, args=(dict(config), command, world, _free_port(), out), nprocs=world,
                           join=True, start_method=method)
        results = [torch.load(os.path.join(out, f"rank{r}.pt"), weights_only=False) for r in range(world)]
    gap = max(float(np.abs(r["params"] - results[0]["params"]).max(initial=0.0)) for r in results)
    last_run.clear()
    last_run.update(world_size=world, backend=results[0]["backend"], max_param_diff=gap)
    return torch.load(io.BytesIO(results[0]["agent"]), weights_only=False)


__all__ = ["last_run", "launch"]
