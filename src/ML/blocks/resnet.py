"""Residual networks with a CIFAR-style stem (``ResNet18``, ``ResNet34``), the CIFAR augmentation
``RandomCropFlip`` and the input normalization ``Normalize`` (``norm=true``)."""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ML.blocks.architectures import apply_head, as_shape, image_shape
from ML.errors import UserError


class BasicBlock(nn.Module):
    def __init__(self, in_channels: int, channels: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != channels:
            self.shortcut = nn.Sequential(nn.Conv2d(in_channels, channels, 1, stride, bias=False),
                                          nn.BatchNorm2d(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class ResNet(nn.Module):
    """A CIFAR-style residual network (He et al. 2016, the CIFAR variant of e.g. kuangliu/pytorch-cifar):
    a 3×3 stride-1 conv stem of ``width`` channels (no 7×7 conv, no max-pool, so 32×32 inputs keep their
    resolution), four stages of basic blocks with ``width·(1, 2, 4, 8)`` channels, strides (1, 2, 2, 2),
    BatchNorm and ReLU, then global average pooling. As ``Eyes`` it is a body (``8·width`` features); given
    ``out_shape`` it adds a linear head. UnifiedML's original ``ML.Blocks.Architectures.Vision.ResNet18.
    ResNet18`` names ``ResNet18``.

    Args:
        in_shape: one input's shape (C, H, W) (inferred).
        out_shape: ``None`` for a body (output: ``8·width`` pooled features), else a linear head's shape.
        blocks: basic blocks per stage (four stages).
        width: channels of the stem and the first stage (doubling per stage).
    """

    def __init__(self, in_shape: Any, out_shape: Any = None, blocks: Any = (2, 2, 2, 2), width: int = 64):
        super().__init__()
        c, h, w = image_shape(in_shape, type(self).__name__)
        self.in_shape = (c, h, w)
        self.out_shape = as_shape(out_shape, "out_shape", type(self).__name__)
        width = int(width)
        blocks = [int(b) for b in blocks]
        if width <= 0 or not blocks or any(b < 1 for b in blocks):
            raise UserError(f"{type(self).__name__}: width > 0 and blocks ≥ 1 per stage "
                            f"(got width={width}, blocks={blocks})")
        layers: list[nn.Module] = [nn.Conv2d(c, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU()]
        channels = width
        for stage, count in enumerate(blocks):
            out_channels = width * 2 ** stage
            for i in range(count):
                layers.append(BasicBlock(channels, out_channels, 2 if stage > 0 and i == 0 else 1))
                channels = out_channels
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(1)]
        self.body = nn.Sequential(*layers)
        self.out_features = channels
        self.head = None
        if self.out_shape is not None:
            self.head = nn.Linear(channels, math.prod(self.out_shape))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 3:
            x = x.unsqueeze(1)
        out = self.body(x)
        return apply_head(self.head, self.out_shape, out)


class ResNet18(ResNet):
    """ResNet-18, CIFAR-style: (2, 2, 2, 2) basic blocks, 64 → 512 channels (11.2M parameters)."""

    def __init__(self, in_shape: Any, out_shape: Any = None, width: int = 64):
        super().__init__(in_shape, out_shape, (2, 2, 2, 2), width)


class ResNet34(ResNet):
    """ResNet-34, CIFAR-style: (3, 4, 6, 3) basic blocks."""

    def __init__(self, in_shape: Any, out_shape: Any = None, width: int = 64):
        super().__init__(in_shape, out_shape, (3, 4, 6, 3), width)


class RandomCropFlip(nn.Module):
    """Random crop after zero-padding by ``padding`` (per image) and a horizontal flip with probability
    1/2: the standard CIFAR augmentation (``Aug=RandomCropFlip``).

    Applied only in training mode; in eval mode it returns its input unchanged.
    """

    def __init__(self, in_shape: Any = None, padding: int = 4, flip: bool = True):
        super().__init__()
        self.padding, self.flip = int(padding), bool(flip)
        if self.padding < 0:
            raise UserError(f"RandomCropFlip: padding must be ≥ 0, not {padding}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or x.dim() != 4:
            return x
        b, _, h, w = x.shape
        p = self.padding
        if p:
            padded = F.pad(x, (p, p, p, p))
            dy = torch.randint(0, 2 * p + 1, (b,), device=x.device)
            dx = torch.randint(0, 2 * p + 1, (b,), device=x.device)
            rows = (dy[:, None] + torch.arange(h, device=x.device))[:, :, None]  # (B, H, 1)
            cols = (dx[:, None] + torch.arange(w, device=x.device))[:, None, :]  # (B, 1, W)
            batch = torch.arange(b, device=x.device)[:, None, None]
            x = padded.permute(0, 2, 3, 1)[batch, rows, cols].permute(0, 3, 1, 2)
        if self.flip:
            mask = torch.rand(b, device=x.device) < 0.5
            x = torch.where(mask[:, None, None, None], x.flip(-1), x)
        return x.contiguous()


class Normalize(nn.Module):
    """``(x - mean) / std`` per channel (axis 1); ``mean``/``std`` are lists (one per channel) or numbers."""

    mean: torch.Tensor  # buffers
    std: torch.Tensor

    def __init__(self, mean: Any, std: Any, in_shape: Any = None):
        super().__init__()
        mean_t = torch.as_tensor(mean, dtype=torch.float32).flatten()
        std_t = torch.as_tensor(std, dtype=torch.float32).flatten().clamp_min(1e-6)
        shape = as_shape(in_shape, "in_shape", "Normalize") if in_shape is not None else None
        extra = (1,) * (len(shape) - 1) if shape else ()
        self.register_buffer("mean", mean_t.view(-1, *extra))
        self.register_buffer("std", std_t.view(-1, *extra))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


__all__ = ["BasicBlock", "Normalize", "RandomCropFlip", "ResNet", "ResNet18", "ResNet34"]
