"""DCGAN (Radford et al. 2016): ``Generator`` (latent → image) and ``Discriminator`` (image → logit),
sized to the dataset's images; UnifiedML's original ``DCGAN.Generator`` / ``DCGAN.Discriminator``."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ML.blocks.architectures import as_shape, image_shape
from ML.errors import UserError
from ML.settings import Settings


@dataclasses.dataclass(frozen=True)
class DiscriminatorSettings(Settings):
    """A generative task's critic (``Model`` is the generator)."""

    Discriminator: Any                  # null: DCGAN's Discriminator
    discriminator: Mapping[str, Any]    # its arguments


def dcgan_init(module: nn.Module) -> None:
    """The paper's initialisation: N(0, 0.02) convs, BatchNorm N(1, 0.02) scales and zero shifts."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


class Generator(nn.Module):
    """DCGAN generator: latent ``z`` → transposed conv 4×4 to a 4×4 map of ``channels · 2^(n-1)`` channels,
    then ``n`` stride-2 transposed convs halving the channels and doubling the side (BatchNorm + ReLU
    between), the last to the image's channels with Tanh: outputs in [-1, 1]. ``n`` is the fewest doublings
    that reach the image side (64×64: n = 4 and 512 channels at 4×4, the paper's generator; 8×8 digits:
    n = 1); a side that is not 4·2^n is area-resized at the end. Weights as in the paper (``dcgan_init``).

    Args:
        in_shape: the latent's shape, ``(z_dim,)`` (inferred from the agent's ``z_dim``).
        out_shape: one image's shape (C, H, W) (inferred from the dataset).
        channels: channels before the last layer (``ngf``; doubled per earlier layer).
    """

    bounded = True  # outputs already in [-1, 1] (Tanh)

    def __init__(self, in_shape: Any, out_shape: Any, channels: int = 64):
        super().__init__()
        z = as_shape(in_shape, "in_shape", "Generator")
        if z is None:
            raise UserError("Generator needs in_shape (z_dim,)")
        self.z_dim = math.prod(z)
        self.out_shape = image_shape(out_shape, "Generator", "out_shape")
        c, h, w = self.out_shape
        channels = int(channels)
        if channels <= 0:
            raise UserError(f"Generator: channels must be > 0, not {channels}")
        n = max(0, math.ceil(math.log2(max(h, w) / 4)))
        width = channels * 2 ** max(n - 1, 0)
        layers: list[nn.Module] = []
        if n == 0:
            layers.append(nn.ConvTranspose2d(self.z_dim, c, 4, 1, 0, bias=False))
        else:
            layers += [nn.ConvTranspose2d(self.z_dim, width, 4, 1, 0, bias=False), nn.BatchNorm2d(width), nn.ReLU()]
            for i in range(n):
                last = i == n - 1
                out = c if last else width // 2
                layers.append(nn.ConvTranspose2d(width, out, 4, 2, 1, bias=False))
                if not last:
                    layers += [nn.BatchNorm2d(out), nn.ReLU()]
                width = out
        layers.append(nn.Tanh())
        self.net = nn.Sequential(*layers)
        self.side = 4 * 2 ** n
        self.apply(dcgan_init)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        out = self.net(z.reshape(len(z), self.z_dim, 1, 1))
        if out.shape[-2:] != self.out_shape[1:]:
            out = F.interpolate(out, size=self.out_shape[1:], mode="area")
        return out


class Discriminator(nn.Module):
    """DCGAN discriminator: stride-2 4×4 convs doubling the channels (LeakyReLU 0.2, BatchNorm from the
    second on) until the map is ≤ 4×4, then a conv over the whole map to ``out_shape`` logits per image.

    Args:
        in_shape: one image's shape (C, H, W) (inferred).
        out_shape: logits per image (default ``(1,)``).
        channels: channels of the first conv (``ndf``; doubled per layer).
    """

    def __init__(self, in_shape: Any, out_shape: Any = (1,), channels: int = 64):
        super().__init__()
        c, h, w = image_shape(in_shape, "Discriminator")
        self.in_shape = (c, h, w)
        self.out_shape = as_shape(out_shape, "out_shape", "Discriminator") or (1,)
        width = int(channels)
        if width <= 0:
            raise UserError(f"Discriminator: channels must be > 0, not {channels}")
        layers: list[nn.Module] = []
        first = True
        while h > 4 or w > 4:
            layers.append(nn.Conv2d(c, width, 4, 2, 1, bias=False))
            if not first:
                layers.append(nn.BatchNorm2d(width))
            layers.append(nn.LeakyReLU(0.2))
            c, h, w, first = width, max(h // 2, 1), max(w // 2, 1), False
            width *= 2
        layers += [nn.Conv2d(c, math.prod(self.out_shape), (h, w), 1, 0, bias=False), nn.Flatten(1)]
        self.net = nn.Sequential(*layers)
        self.apply(dcgan_init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 3:
            x = x.unsqueeze(1)
        out = self.net(x)
        return out.view(len(out), *self.out_shape)


__all__ = ["Discriminator", "Generator", "dcgan_init"]
