"""``input → Eyes → Model → output``: the network every agent builds from the config's parts."""

from __future__ import annotations

import inspect
import math
from typing import Any

import numpy as np
import torch
from torch import nn

from ML.blocks.architectures import MLP, Identity
from ML.errors import UserError
from ML.hyperparams import instantiate, output_shape, resolve


def pick_device(name: Any) -> torch.device:
    """``cpu``, ``cuda``, ``cuda:1``, ``mps``... or ``auto`` (CUDA when there is a GPU, else MPS, else CPU)."""
    name = str(name or "cpu")
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        return torch.device("mps" if mps is not None and mps.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UserError(f"unknown device {name!r}; use cpu, cuda, mps or auto") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"device={name} but no CUDA GPU is available here; use device=cpu or device=auto")
    return device


def config_device(config: Any) -> torch.device:
    """The run's device: ``device=`` when set, else a GPU when ``accelerate=true`` finds one, else the CPU."""
    return pick_device(config.get("device") or ("auto" if config.get("accelerate") else "cpu"))


def _first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


def build_network(config: Any, in_shape: tuple[int, ...], out_shape: tuple[int, ...]) -> nn.Sequential:
    """Eyes (body) then Model (head), each part's shape arguments inferred from the one before.

    A Model written for flat features (``nn.Linear(3 * 32 * 32, 128)``, or a class taking
    ``in_features``) gets an ``nn.Flatten`` between Eyes and Model when it fails on the shaped input.
    The result must map one input of ``in_shape`` to ``prod(out_shape)`` numbers.
    """
    try:
        eyes = instantiate(config["Eyes"], config.get("eyes") or {}, in_shape, None, "Eyes")
        hidden = output_shape(eyes, in_shape)
    except (RuntimeError, ValueError) as e:
        raise UserError(f"Eyes fails on inputs of shape {list(in_shape)}: {_first_line(e)}; "
                        "fix Eyes or its arguments") from None
    model = instantiate(config["Model"], config.get("model") or {}, hidden, out_shape, "Model")
    candidates = [nn.Sequential(eyes, model)]
    if len(hidden) > 1:
        candidates.append(nn.Sequential(eyes, nn.Flatten(1), model))
    error: str = ""
    for net in candidates:
        try:
            shape = output_shape(net, in_shape)
        except (RuntimeError, ValueError, TypeError) as e:
            error = error or _first_line(e)
            continue
        if math.prod(shape) == math.prod(out_shape):
            return net
        error = error or f"it outputs {list(shape)} per input, not {list(out_shape)}"
    raise UserError(f"the network (Eyes → Model) does not map inputs of shape {list(in_shape)} to "
                    f"{list(out_shape)}: {error}; fix Eyes/Model or their arguments")


def body_config(config: Any) -> Any:
    """``Eyes`` followed by ``Pool`` and ``Trunk`` when set (each with its own arguments), as one sequence."""
    parts = [(k, config.get(k), config.get(k.lower()) or {}) for k in ("Eyes", "Pool", "Trunk")]
    parts = [p for p in parts if p[1] is not None]
    if len(parts) == 1:
        return config
    return {**config, "Eyes": [p[1] for p in parts], "eyes": {i: p[2] for i, p in enumerate(parts)}}


def build_scheduler(config: Any, optim: Any, updates: int | None = None) -> Any:
    """``Scheduler`` with ``scheduler.*``, stepped once per update; ``T_max``/``total_steps`` default to the
    run's number of updates (``updates``, else ``train_steps``) and OneCycleLR's ``max_lr`` to ``lr``."""
    name = config.get("Scheduler")
    if name is None:
        return None
    from ML.hyperparams.instantiate import _parameters

    target = resolve(name, "Scheduler")
    args = {"optimizer": optim, **(config.get("scheduler") or {})}
    params = _parameters(target)
    steps = max(int(updates if updates is not None else config.get("train_steps") or 1), 1)
    for key, value in (("T_max", steps), ("total_steps", steps), ("max_lr", config.get("lr"))):
        if key in params and key not in args:
            args[key] = value
    return instantiate(target, args, label="Scheduler")


def build_aug(config: Any, obs_shape: tuple[int, ...], default: str | None = None) -> nn.Module | None:
    """The config's ``Aug`` with ``aug.*``, applied to training batches only: ``default`` when ``Aug`` is
    unset, nothing when it is (or defaults to) ``Identity`` or empty. Every agent builds its augmentation
    here; whether the observations suit it (images) is the augmentation's own check of its ``in_shape``."""
    aug = config.get("Aug")
    aug = default if aug is None else aug
    if aug is None or (isinstance(aug, str) and aug.strip() in ("", "Identity")):
        return None
    module = instantiate(aug, dict(config.get("aug") or {}), obs_shape, None, "Aug")
    if not callable(module):
        raise UserError(f"Aug={aug} is not callable; name an nn.Module class such as RandomShiftsAug")
    return module


def build_optimizer(config: Any, params: Any) -> Any:
    """``Optim`` (a name, path or class) with ``lr`` and ``optim.*`` arguments, fused where it can be."""
    params = [p for p in params if p.requires_grad]
    if not params:
        raise UserError("the network has no trainable parameters; pick a Model with weights (e.g. Model=MLP)")
    args = {"params": params, "lr": config["lr"], **(config.get("optim") or {})}
    optim = resolve(config["Optim"], "Optim")
    if "fused" not in args and isinstance(optim, type) and "fused" in inspect.signature(optim).parameters:
        # one kernel per step instead of a dozen small ones: ~3x faster on a CPU for small networks, the same
        # math (optim.fused=false opts out)
        args["fused"] = True
    return instantiate(optim, args, label="Optim")


class NumpyMLP:
    """A CPU network of ``Linear``, ``ReLU`` and ``Tanh`` layers run in numpy, for acting (one observation,
    or a vector env's few with ``batch``).

    One observation through a small MLP costs torch more in per-call overhead (module calls, tensor
    wrapping, ``.item()``) than the math; numpy does the same matrix-vector products several times faster.
    The layers are numpy views of the network's parameters, which the optimiser and ``load_state_dict`` update
    in place, so the copy is always the network itself. ``of(net)`` is ``None`` for any other network.
    """

    _CONTAINERS = (nn.Sequential, MLP)
    _SKIPPED = (Identity, nn.Identity, nn.Flatten)

    def __init__(self, layers: list[tuple[np.ndarray, np.ndarray | None] | str]):
        self.layers = layers  # (weight, bias) of a Linear, or the name of an activation: "relu", "tanh"

    @classmethod
    def of(cls, net: nn.Module) -> NumpyMLP | None:
        """The numpy copy of ``net`` when it is only (nested) ``Sequential``/``MLP`` containers of
        ``Linear``, ``ReLU``, ``Tanh``, ``Identity`` and ``Flatten`` on the CPU, with one output axis; else
        ``None``."""
        layers: list[tuple[np.ndarray, np.ndarray | None] | str] = []
        for module in net.modules():
            if type(module) in cls._CONTAINERS:
                if isinstance(module, MLP) and module.out_shape is not None and len(module.out_shape) > 1:
                    return None
            elif type(module) is nn.Linear:
                if module.weight.device.type != "cpu" or module.weight.dtype != torch.float32:
                    return None
                bias = module.bias.detach().numpy() if module.bias is not None else None
                layers.append((module.weight.detach().numpy(), bias))
            elif type(module) in (nn.ReLU, nn.Tanh):
                layers.append("relu" if type(module) is nn.ReLU else "tanh")
            elif type(module) not in cls._SKIPPED:
                return None
        return cls(layers) if layers else None

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """The output for one observation (any shape; flattened first, as the network's ``Flatten``)."""
        x = np.asarray(x, np.float32).reshape(-1)
        for layer in self.layers:
            if layer == "relu":
                x = np.maximum(x, 0.0)
            elif layer == "tanh":
                x = np.tanh(x)
            else:
                weight, bias = layer
                x = weight @ x if bias is None else weight @ x + bias
        return x

    def batch(self, x: np.ndarray) -> np.ndarray:
        """The outputs for a batch of observations (the first axis), each flattened first."""
        x = np.asarray(x, np.float32).reshape(len(x), -1)
        for layer in self.layers:
            if layer == "relu":
                x = np.maximum(x, 0.0)
            elif layer == "tanh":
                x = np.tanh(x)
            else:
                weight, bias = layer
                x = x @ weight.T if bias is None else x @ weight.T + bias
        return x
