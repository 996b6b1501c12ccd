"""Built-in architectures: ``Identity``, ``MLP`` and ``CNN``.

Each takes its shapes as ``in_shape`` / ``out_shape`` (one input's shape, no batch axis), which
``ML.hyperparams.instantiate`` fills in. Without ``out_shape`` a part is a *body* (``Eyes=CNN`` outputs a
feature map, ``MLP`` outputs ``hidden_dim`` features); with it, it has a *head* whose output is reshaped
to ``out_shape``. The default network is ``input → Eyes (Identity) → Model (MLP) → output``.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from ML.errors import UserError

Shape = tuple[int, ...]


def as_shape(shape: Any, name: str, part: str) -> Shape | None:
    if shape is None:
        return None
    if isinstance(shape, int):
        return (int(shape),)
    try:
        out = tuple(int(s) for s in shape)
    except (TypeError, ValueError):
        raise UserError(f"{part}: {name} must be a shape such as [1, 28, 28], not {shape!r}") from None
    if not out or any(s <= 0 for s in out):
        raise UserError(f"{part}: {name} must be a non-empty shape of positive sizes, not {shape!r}")
    return out


def image_shape(shape: Any, part: str, name: str = "in_shape", gray: bool = True,
                fix: str = "") -> tuple[int, int, int]:
    """``shape`` as one image's ``(C, H, W)``: the check every image block makes of its shape argument.

    ``gray``: an ``(H, W)`` shape is a one-channel image (the block adds the channel axis to its inputs);
    ``fix`` ends the error line with what would fix it.
    """
    out = as_shape(shape, name, part)
    if out is None:
        raise UserError(f"{part} needs {name} (C, H, W) of its images; pass it, e.g. eyes.{name}=[C,H,W]")
    if gray and len(out) == 2:
        out = (1, *out)
    if len(out) != 3:
        raise UserError(f"{part} works on images shaped (C, H, W), not {list(out)}{fix}")
    return out


def activation_module(activation: Any, part: str) -> nn.Module:
    """``'ReLU'`` / ``'nn.GELU'`` / a class / an instance → a fresh activation module."""
    if isinstance(activation, nn.Module):
        return activation
    if isinstance(activation, str):
        name = activation.removeprefix("torch.").removeprefix("nn.")
        target = getattr(nn, name, None)
        if not (isinstance(target, type) and issubclass(target, nn.Module)):
            raise UserError(f"{part}: unknown activation {activation!r}; "
                            "use a torch.nn name such as ReLU, GELU, Tanh")
        return target()
    if callable(activation):
        return activation()
    raise UserError(f"{part}: activation must be a torch.nn name such as 'ReLU', not {activation!r}")


def apply_head(head: nn.Module | None, out_shape: Shape | None, features: torch.Tensor) -> torch.Tensor:
    """A body's features through its head (if it has one), shaped ``(batch, *out_shape)``."""
    if head is None:
        return features
    out = head(features)
    return out.view(out.shape[0], *out_shape) if out_shape is not None and len(out_shape) > 1 else out


class Identity(nn.Module):
    """Returns its input unchanged (the default ``Eyes``)."""

    def __init__(self, in_shape: Any = None):
        super().__init__()
        self.in_shape = as_shape(in_shape, "in_shape", "Identity")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


class MLP(nn.Module):
    """Flatten, then ``depth`` hidden layers of ``hidden_dim`` units, then (with ``out_shape``) a linear head.

    Args:
        in_shape: one input's shape (inferred).
        out_shape: the output's shape (inferred when the MLP is the ``Model``); ``None`` makes it a body
            whose output is the last hidden layer (``hidden_dim`` features, or the flat input if ``depth=0``).
        hidden_dim: units per hidden layer.
        depth: number of hidden layers.
        activation: a ``torch.nn`` activation name (``ReLU``, ``GELU``, ``Tanh``...) or class.
        dropout: dropout probability after each hidden activation (0: none).
        layer_norm: LayerNorm before each hidden activation.
    """

    def __init__(self, in_shape: Any, out_shape: Any = None, hidden_dim: int = 256, depth: int = 2,
                 activation: Any = "ReLU", dropout: float = 0.0, layer_norm: bool = False):
        super().__init__()
        in_shape = as_shape(in_shape, "in_shape", "MLP")
        if in_shape is None:
            raise UserError("MLP needs in_shape (the shape of one input); pass model.in_shape=[...]")
        self.in_shape = in_shape
        self.out_shape = as_shape(out_shape, "out_shape", "MLP")
        depth, hidden_dim = int(depth), int(hidden_dim)
        if depth < 0 or hidden_dim <= 0:
            raise UserError(f"MLP: depth must be ≥ 0 and hidden_dim > 0 "
                            f"(got depth={depth}, hidden_dim={hidden_dim})")
        layers: list[nn.Module] = [nn.Flatten(1)]
        width = math.prod(in_shape)
        for _ in range(depth):
            layers.append(nn.Linear(width, hidden_dim))
            if layer_norm:
                layers.append(nn.LayerNorm(hidden_dim))
            layers.append(activation_module(activation, "MLP"))
            if dropout:
                layers.append(nn.Dropout(float(dropout)))
            width = hidden_dim
        if self.out_shape is not None:
            layers.append(nn.Linear(width, math.prod(self.out_shape)))
        self.net = nn.Sequential(*layers)
        self.out_features = math.prod(self.out_shape) if self.out_shape is not None else width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.net(x)
        if self.out_shape is not None and len(self.out_shape) > 1:
            out = out.view(out.shape[0], *self.out_shape)
        return out


class CNN(nn.Module):
    """``depth`` conv layers (``channels`` each) for (C, H, W) inputs; with ``out_shape`` a linear head.

    Convolutions are ``kernel_size`` wide with "same" padding (``kernel_size // 2``), so small images
    (8×8 digits, 28×28 MNIST) keep their size at any depth. ``stride`` applies to the first layer only
    (e.g. ``eyes.stride=2`` for 84×84 Atari frames); ``pool=N`` adds a 2×2 max-pool after every N layers
    while the map is at least 4×4. A 2-D input (H, W) is taken as one channel.

    Args:
        in_shape: one input's shape, (C, H, W) or (H, W) (inferred).
        out_shape: ``None`` (a body: the output is the feature map (channels, H', W')) or the head's shape.
        depth: number of conv layers.
        channels: output channels of each conv layer.
        kernel_size, stride, pool: see above.
        activation: a ``torch.nn`` activation name or class.
        batch_norm: BatchNorm2d after each convolution.
    """

    def __init__(self, in_shape: Any, out_shape: Any = None, depth: int = 3, channels: int = 32,
                 kernel_size: int = 3, stride: int = 1, pool: int = 0, activation: Any = "ReLU",
                 batch_norm: bool = False):
        super().__init__()
        in_shape = as_shape(in_shape, "in_shape", "CNN")
        if in_shape is None:
            raise UserError("CNN needs in_shape (C, H, W); pass eyes.in_shape=[C,H,W]")
        if len(in_shape) == 2:
            in_shape = (1, *in_shape)
        if len(in_shape) != 3:
            raise UserError(f"CNN needs image inputs shaped (C, H, W), got {list(in_shape)}; "
                            "use Eyes=Identity with Model=MLP for flat inputs")
        self.in_shape = in_shape
        self.out_shape = as_shape(out_shape, "out_shape", "CNN")
        depth, channels, kernel_size = int(depth), int(channels), int(kernel_size)
        stride, pool = int(stride), int(pool)
        if depth < 0 or channels <= 0 or kernel_size <= 0 or stride <= 0 or pool < 0:
            raise UserError(f"CNN: depth ≥ 0, channels, kernel_size and stride > 0, pool ≥ 0 "
                            f"(got depth={depth}, channels={channels}, kernel_size={kernel_size}, "
                            f"stride={stride}, pool={pool})")
        layers: list[nn.Module] = []
        c, h, w = in_shape
        for i in range(depth):
            s = stride if i == 0 else 1
            pad = kernel_size // 2
            h_next = (h + 2 * pad - kernel_size) // s + 1
            w_next = (w + 2 * pad - kernel_size) // s + 1
            if h_next < 1 or w_next < 1:
                raise UserError(f"CNN: layer {i} would shrink a {h}×{w} map to nothing; "
                                "lower eyes.stride or eyes.kernel_size")
            layers.append(nn.Conv2d(c, channels, kernel_size, stride=s, padding=pad))
            if batch_norm:
                layers.append(nn.BatchNorm2d(channels))
            layers.append(activation_module(activation, "CNN"))
            c, h, w = channels, h_next, w_next
            if pool and (i + 1) % pool == 0 and h >= 4 and w >= 4:
                layers.append(nn.MaxPool2d(2))
                h, w = h // 2, w // 2
        self.body = nn.Sequential(*layers)
        self.feature_shape: Shape = (c, h, w)
        self.head = None
        if self.out_shape is not None:
            self.head = nn.Sequential(nn.Flatten(1), nn.Linear(c * h * w, math.prod(self.out_shape)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 3 and self.in_shape[0] == 1 and tuple(x.shape[1:]) == self.in_shape[1:]:
            x = x.unsqueeze(1)  # (B, H, W) → (B, 1, H, W)
        out = self.body(x)
        return apply_head(self.head, self.out_shape, out)
