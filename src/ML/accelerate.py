"""``accelerate=true``: mixed precision, ``channels_last``, pinned non-blocking copies, optional ``torch.compile``,
chosen per device (``choose``) and recorded in run.json. With ``accelerate=false`` (the default) every helper
is a no-op and the update is the plain PyTorch one."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
from typing import Any, ClassVar, cast

import torch
from torch import nn

from ML.settings import Settings


@dataclasses.dataclass(frozen=True)
class AccelSettings(Settings):
    """Where and how fast a run computes: its device, acceleration, processes and CPU threads."""

    accelerate: bool            # mixed precision, channels_last, pinned copies, memory-mapped data, workers
    compile: bool               # with accelerate: torch.compile the network
    device: str | None          # cpu | cuda | cuda:1 | mps | auto (null: cpu, or auto when accelerated)
    workers: int | None         # batch-gathering processes (null: chosen from the batch's size)
    world_size: int | None      # data-parallel processes (null: every GPU when accelerated, else 1)
    lr_scaling: str | None      # linear: lr × world_size under data-parallel training
    threads: int | None         # torch CPU threads (null: chosen from the agent and the machine)

    #: the process's, one value for every network it builds (tasks trained together share them,
    #: ``ML.hyperparams.together``); ``compile``, ``workers`` and ``lr_scaling`` are each network's or dataset's
    process_wide: ClassVar[tuple[str, ...]] = ("accelerate", "device", "threads", "world_size")


@functools.lru_cache(maxsize=1)
def cpu_has_native_bf16() -> bool:
    """AMX or AVX512-BF16 in the CPU flags (Linux); elsewhere assume not."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


def is_convolutional(net: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.conv._ConvNd) for m in net.modules())


def choose(device: torch.device, conv: bool, enabled: bool = True) -> dict[str, Any]:
    """The acceleration decision for a network on a device:

    * CUDA: bf16 autocast where the GPU supports it, else fp16 with a ``GradScaler``; ``channels_last`` for
      convolutional networks; pinned memory and non-blocking host-to-device copies.
    * MPS: fp16 autocast, no scaler (PyTorch has none for MPS), ``channels_last`` for conv networks.
    * CPU: bf16 autocast only for convolutional networks on CPUs with native bf16 (AMX or AVX512-BF16),
      where oneDNN's bf16 kernels are faster; for MLPs (and CPUs without bf16) autocast costs conversions
      and is left off. No pinned memory (there is no copy).
    """
    decision: dict[str, Any] = {"enabled": bool(enabled), "device": str(device), "amp": None,
                                "grad_scaler": False, "channels_last": False, "pinned": False,
                                "compile": False, "why": ""}
    if not enabled:
        decision["why"] = "accelerate=false"
        return decision
    if device.type == "cuda":
        bf16 = torch.cuda.is_bf16_supported()
        decision.update(amp="bfloat16" if bf16 else "float16", grad_scaler=not bf16, channels_last=conv,
                        pinned=True, why="CUDA: bf16 where supported, else fp16 with a grad scaler")
    elif device.type == "mps":
        decision.update(amp="float16", channels_last=conv, why="MPS: fp16 autocast")
    elif conv and cpu_has_native_bf16():
        decision.update(amp="bfloat16", channels_last=True, why="CPU with native bf16 and a conv network")
    else:
        decision["why"] = ("CPU: autocast off (no native bf16)" if conv
                           else "CPU: autocast off for a network without convolutions (bf16 is slower here)")
    return decision


class Accelerator:
    """The per-agent acceleration state (picklable; the scaler's state travels with the agent). An agent
    routes its update through it::

        x = accel.to_device(x)        # pinned host memory, non-blocking copy (CUDA)
        with accel.autocast():        # bf16 / fp16 autocast where chosen, else a no-op
            loss = ...
        accel.step(loss, optim)       # backward + step, through a GradScaler for fp16

    ``compile=true``: ``compile(net)`` wraps the forward in ``torch.compile`` (seconds to minutes of
    compiling once; the pickled agent keeps the plain module).
    """

    def __init__(self, accel: AccelSettings, device: torch.device, *nets: nn.Module):
        conv = any(is_convolutional(n) for n in nets)
        self.decision = choose(device, conv, accel.accelerate)
        self.decision["compile"] = bool(accel.accelerate and accel.compile)
        self.device = device
        amp = self.decision["amp"]
        self.dtype = getattr(torch, amp) if amp else None
        self.scaler = torch.amp.GradScaler(device.type) if self.decision["grad_scaler"] else None
        for net in nets:
            if self.decision["channels_last"]:
                net.to(memory_format=torch.channels_last)

    @property
    def enabled(self) -> bool:
        return self.decision["enabled"]

    def autocast(self) -> Any:
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    def to_device(self, x: Any, dtype: torch.dtype | None = None) -> torch.Tensor:
        """A tensor on the agent's device: pinned + non-blocking when CUDA and accelerated; 4-D inputs
        in ``channels_last`` when chosen."""
        x = torch.as_tensor(x, dtype=dtype)
        if x.device != self.device:
            if self.decision["pinned"] and x.device.type == "cpu":
                x = x.pin_memory()
            x = x.to(self.device, non_blocking=self.decision["pinned"])
        if self.decision["channels_last"] and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def step(self, loss: torch.Tensor, optim: Any, after_backward: Any = None, update: bool = True) -> None:
        """``zero_grad → backward → (after_backward) → step``, through the grad scaler when there is one
        (``update=False``: more optimisers step this iteration; the last one updates the scale)."""
        optim.zero_grad(set_to_none=True)
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            if after_backward is not None:
                after_backward()
            self.scaler.step(optim)
            if update:
                self.scaler.update()
        else:
            loss.backward()
            if after_backward is not None:
                after_backward()
            optim.step()

    def describe(self) -> dict[str, Any]:
        """What run.json records (``env.accelerate``): the decision, when accelerated."""
        return {"accelerate": self.decision} if self.enabled else {}

    def compile(self, net: nn.Module) -> nn.Module:
        """``torch.compile(net)`` when ``compile=true`` (accelerated), else ``net``."""
        return cast(nn.Module, torch.compile(net)) if self.decision["compile"] else net


__all__ = ["Accelerator", "choose", "cpu_has_native_bf16", "is_convolutional"]
