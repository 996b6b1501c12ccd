"""``input → Eyes → Model → output``: the network every agent builds from the run's parts (``NetworkSettings``)."""

from __future__ import annotations

import dataclasses
import inspect
import math
from collections.abc import Mapping
from typing import Any, ClassVar, cast

import numpy as np
import torch
from torch import nn

from ML.accelerate import AccelSettings
from ML.blocks.architectures import MLP, Identity
from ML.errors import UserError
from ML.hyperparams import instantiate, output_shape, resolve
from ML.settings import Settings


@dataclasses.dataclass(frozen=True)
class NetworkSettings(Settings):
    """The parts an agent builds its networks from: ``input → Aug → Eyes → Pool → Trunk → Model``, the
    optimiser and its learning-rate schedule. Each Uppercase field is a part (a name, a list of names, an
    object given in code, or null) and the lowercase one after it its constructor arguments."""

    Eyes: Any               # the body (CNN, ResNet18, ViT, ...)
    eyes: Mapping[str, Any]
    Pool: Any               # between Eyes and Trunk (null: none)
    pool: Mapping[str, Any]
    Trunk: Any              # between Pool and Model (null: none)
    trunk: Mapping[str, Any]
    Model: Any              # the head (or a whole network)
    model: Mapping[str, Any]
    Aug: Any                # augmentation of training batches (null: the agent's default, often none)
    aug: Mapping[str, Any]
    Optim: Any              # a torch.optim name, path or class, with ``lr`` and ``optim.*``
    optim: Mapping[str, Any]
    lr: float               # the optimiser's learning rate
    Scheduler: Any          # a torch.optim.lr_scheduler stepped once per update (null: none)
    scheduler: Mapping[str, Any]

    #: keys a part owns besides its name and arguments: the optimiser's learning rate
    EXTRA: ClassVar[dict[str, tuple[str, ...]]] = {"Optim": ("lr",)}

    @classmethod
    def part_keys(cls, part: str) -> frozenset[str]:
        """The config keys part ``part`` (``Optim``) owns: itself, its arguments, and its extras (``lr``)."""
        return frozenset({part, part.lower(), *cls.EXTRA.get(part, ())})

    def body(self) -> NetworkSettings:
        """``Eyes`` followed by ``Pool`` and ``Trunk`` when set (each with its own arguments), as one ``Eyes``
        sequence: what ``build_network`` puts before the Model."""
        parts = [(self.Eyes, self.eyes), (self.Pool, self.pool), (self.Trunk, self.trunk)]
        parts = [p for p in parts if p[0] is not None]
        if len(parts) == 1:
            return self
        eyes = {str(i): p[1] or {} for i, p in enumerate(parts)}  # part i's arguments (``eyes.0.depth``)
        return dataclasses.replace(self, Eyes=[p[0] for p in parts], eyes=eyes, Pool=None, pool={}, Trunk=None,
                                   trunk={})


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


def config_device(accel: AccelSettings) -> torch.device:
    """The run's device: ``device=`` when set, else a GPU when ``accelerate=true`` finds one, else the CPU."""
    return pick_device(accel.device or ("auto" if accel.accelerate else "cpu"))


def _first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


def build_network(net: NetworkSettings, in_shape: tuple[int, ...], out_shape: tuple[int, ...]) -> nn.Sequential:
    """Eyes (body) then Model (head), each part's shape arguments inferred from the one before.

    A Model written for flat features (``nn.Linear(3 * 32 * 32, 128)``, or a class taking
    ``in_features``) gets an ``nn.Flatten`` between Eyes and Model when it fails on the shaped input.
    The result must map one input of ``in_shape`` to ``prod(out_shape)`` numbers (``settings.body()`` for
    ``Pool``/``Trunk`` between them).
    """
    try:
        eyes = instantiate(net.Eyes, dict(net.eyes or {}), in_shape, None, "Eyes")
        hidden = output_shape(eyes, in_shape)
    except (RuntimeError, ValueError) as e:
        raise UserError(f"Eyes fails on inputs of shape {list(in_shape)}: {_first_line(e)}; "
                        "fix Eyes or its arguments") from None
    model = instantiate(net.Model, dict(net.model or {}), hidden, out_shape, "Model")
    candidates = [nn.Sequential(eyes, model)]
    if len(hidden) > 1:
        candidates.append(nn.Sequential(eyes, nn.Flatten(1), model))
    error: str = ""
    for candidate in candidates:
        try:
            shape = output_shape(candidate, in_shape)
        except (RuntimeError, ValueError, TypeError) as e:
            error = error or _first_line(e)
            continue
        if math.prod(shape) == math.prod(out_shape):
            return candidate
        error = error or f"it outputs {list(shape)} per input, not {list(out_shape)}"
    raise UserError(f"the network (Eyes → Model) does not map inputs of shape {list(in_shape)} to "
                    f"{list(out_shape)}: {error}; fix Eyes/Model or their arguments")


def build_scheduler(net: NetworkSettings, optim: Any, updates: int) -> Any:
    """``Scheduler`` with ``scheduler.*``, stepped once per update; ``T_max``/``total_steps`` default to the
    run's number of updates (``updates``: the agent knows it, e.g. ``train_steps`` for a classifier) and
    OneCycleLR's ``max_lr`` to ``lr``."""
    if net.Scheduler is None:
        return None
    from ML.hyperparams.instantiate import _parameters

    target = resolve(net.Scheduler, "Scheduler")
    args = {"optimizer": optim, **(net.scheduler or {})}
    params = _parameters(target)
    steps = max(int(updates), 1)
    for key, value in (("T_max", steps), ("total_steps", steps), ("max_lr", net.lr)):
        if key in params and key not in args:
            args[key] = value
    return instantiate(target, args, label="Scheduler")


def build_aug(net: NetworkSettings, obs_shape: tuple[int, ...], default: str | None = None) -> nn.Module | None:
    """The run's ``Aug`` with ``aug.*``, applied to training batches only: ``default`` when ``Aug`` is
    unset, nothing when it is (or defaults to) ``Identity`` or empty. Every agent builds its augmentation
    here; whether the observations suit it (images) is the augmentation's own check of its ``in_shape``."""
    aug = default if net.Aug is None else net.Aug
    if aug is None or (isinstance(aug, str) and aug.strip() in ("", "Identity")):
        return None
    module = instantiate(aug, dict(net.aug or {}), obs_shape, None, "Aug")
    if not callable(module):
        raise UserError(f"Aug={aug} is not callable; name an nn.Module class such as RandomShiftsAug")
    return cast(nn.Module, module)


def build_optimizer(net: NetworkSettings, params: Any) -> Any:
    """``Optim`` (a name, path or class) with ``lr`` and ``optim.*`` arguments, fused where it can be."""
    params = [p for p in params if p.requires_grad]
    if not params:
        raise UserError("the network has no trainable parameters; pick a Model with weights (e.g. Model=MLP)")
    args = {"params": params, "lr": net.lr, **(net.optim or {})}
    optim = resolve(net.Optim, "Optim")
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
        return self._forward(np.asarray(x, np.float32).reshape(-1))

    def batch(self, x: np.ndarray) -> np.ndarray:
        """The outputs for a batch of observations (the first axis), each flattened first."""
        return self._forward(np.asarray(x, np.float32).reshape(len(x), -1))

    def _forward(self, x: np.ndarray) -> np.ndarray:
        """The layers on a vector or on a batch of rows: ``x @ weight.T`` is a matrix-vector product (gemv) for a
        vector, as fast as ``weight @ x`` and equal to it, so one observation pays no matrix-matrix cost."""
        for layer in self.layers:
            if isinstance(layer, str):  # "relu" or "tanh"
                x = np.maximum(x, 0.0) if layer == "relu" else np.tanh(x)
            else:
                weight, bias = layer
                x = x @ weight.T if bias is None else x @ weight.T + bias
        return x
