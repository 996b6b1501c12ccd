"""Rank and world helpers of data-parallel training, for the agents and drivers inside one process.

A leaf: the launcher that starts the processes (``ML.distributed``) sits above the run loop; what runs
inside each process only asks its rank, wraps its network and averages its gradients through here.
"""

from __future__ import annotations

import torch
import torch.distributed as dist

from ML.accelerate import AccelSettings


def rank_world() -> tuple[int, int]:
    """``(rank, world_size)`` of this process; ``(0, 1)`` outside a distributed run."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def world_size(accel: AccelSettings) -> int:
    """``world_size`` from the settings; ``null``/``auto``: every GPU when accelerated on CUDA, else 1."""
    value = accel.world_size
    if value is None:
        device = str(accel.device or "auto")
        if accel.accelerate and device in ("auto", "cuda") and torch.cuda.device_count() > 1:
            return torch.cuda.device_count()
        return 1
    return max(int(value), 1)


def wrap(module: torch.nn.Module, device: torch.device) -> torch.nn.Module | None:
    """``DistributedDataParallel(module)`` inside a distributed run, else ``None``."""
    if rank_world()[1] == 1:
        return None
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(module, device_ids=[device.index] if device.type == "cuda" else None)


def broadcast_parameters(module: torch.nn.Module) -> None:
    """Rank 0's parameters and buffers to every rank (no-op outside a distributed run)."""
    if rank_world()[1] == 1:
        return
    with torch.no_grad():
        for tensor in [*module.parameters(), *module.buffers()]:
            dist.broadcast(tensor.data, 0)


def average_gradients(module: torch.nn.Module) -> None:
    """The mean of every rank's gradients, in place (no-op outside a distributed run)."""
    world = rank_world()[1]
    if world == 1:
        return
    grads = [p.grad for p in module.parameters() if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= world
    offset = 0
    for g in grads:
        g.copy_(flat[offset:offset + g.numel()].view_as(g))
        offset += g.numel()


__all__ = ["average_gradients", "broadcast_parameters", "rank_world", "world_size", "wrap"]
