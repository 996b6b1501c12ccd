"""Pixel blocks: DrQ-v2's conv ``Encoder`` and ``RandomShiftsAug`` (Yarats et al. 2021), and the
Nature-DQN ``NatureCNN`` (Mnih et al. 2015); each checks its ``in_shape`` is an image."""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ML.blocks.architectures import apply_head, as_shape, image_shape
from ML.errors import UserError

_STATES = "; for state vectors use Eyes=Identity (e.g. task=drqv2_states, or env.pixels=true)"


def orthogonal_init(module: nn.Module) -> None:
    """DrQ-v2's ``weight_init``: orthogonal weights (ReLU gain for convs), zero biases."""
    if isinstance(module, nn.Linear):
        nn.init.orthogonal_(module.weight.data)
        if module.bias is not None:
            module.bias.data.fill_(0.0)
    elif isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.orthogonal_(module.weight.data, nn.init.calculate_gain("relu"))
        if module.bias is not None:
            module.bias.data.fill_(0.0)


class Encoder(nn.Module):
    """DrQ-v2's image encoder: (C, H, W) pixels in [0, 255] scaled to [-0.5, 0.5], four 3×3 convs of 32
    channels (the first with stride 2), ReLU after each, flattened: a (9, 84, 84) frame stack → 32·35·35 =
    39200 features. Convolutions are initialised orthogonally (ReLU gain), biases at 0, as in DrQ-v2.

    Args:
        in_shape: one observation's shape (C, H, W) (inferred).
        channels: channels of every conv layer (32 in DrQ-v2).
        depth: conv layers (4 in DrQ-v2); the first has stride 2.
    """

    def __init__(self, in_shape: Any, channels: int = 32, depth: int = 4):
        super().__init__()
        c, h, w = image_shape(in_shape, "Encoder", gray=False, fix=_STATES)
        channels, depth = int(channels), int(depth)
        if channels <= 0 or depth < 1:
            raise UserError(f"Encoder: channels > 0 and depth ≥ 1 (got channels={channels}, depth={depth})")
        layers: list[nn.Module] = []
        for i in range(depth):
            stride = 2 if i == 0 else 1
            h, w = (h - 3) // stride + 1, (w - 3) // stride + 1
            if h < 1 or w < 1:
                raise UserError(f"Encoder: {list(in_shape)} images are too small for {depth} conv layers; "
                                "lower eyes.depth")
            layers += [nn.Conv2d(c, channels, 3, stride=stride), nn.ReLU()]
            c = channels
        self.in_shape = (int(in_shape[0]), int(in_shape[1]), int(in_shape[2]))
        self.convnet = nn.Sequential(*layers)
        self.repr_dim = c * h * w
        self.apply(orthogonal_init)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        h = self.convnet(obs.float() / 255.0 - 0.5)
        return h.flatten(1)


DrQEncoder = Encoder


class RandomShiftsAug(nn.Module):
    """Random shifts of up to ``pad`` pixels per axis with replicated borders (DrQ / DrQ-v2): replicate-pad
    each image by ``pad``, then crop it back to its own size at a random whole-pixel offset in [0, 2 pad] per
    axis, drawn as DrQ-v2 draws it (``torch.randint(0, 2 * pad + 1, (n, 1, 1, 2))``: x then y).

    DrQ-v2 samples the shifted image with a bilinear ``grid_sample`` at pixel centres, which is this crop up
    to float rounding (≤ 0.004 on a 0-255 image); the crop is exact and ~4x cheaper on a CPU.

    Takes (N, C, H, W) batches (integer ones are cast to float first) and returns float ones of the same
    shape. The offsets are read on the host (``tolist``): one device sync a call on a GPU.

    Args:
        pad: the largest shift, in pixels (4 in DrQ-v2).
        in_shape: one input's shape (inferred; checked to be an image).
    """

    def __init__(self, pad: int = 4, in_shape: Any = None):
        super().__init__()
        self.pad = int(pad)
        if self.pad < 0:
            raise UserError(f"RandomShiftsAug: pad must be ≥ 0, not {pad}")
        if in_shape is not None:
            image_shape(in_shape, "RandomShiftsAug", gray=False,
                        fix="; drop Aug (Aug=null) or train from pixels")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pad == 0:
            return x if x.is_floating_point() else x.float()
        n, _, h, w = x.shape
        p = self.pad
        shifts = torch.randint(0, 2 * p + 1, (n, 1, 1, 2), device=x.device).view(n, 2).tolist()
        padded = F.pad(x if x.is_floating_point() else x.float(), (p, p, p, p), mode="replicate")
        return torch.stack([padded[i, :, dy:dy + h, dx:dx + w] for i, (dx, dy) in enumerate(shifts)])


class NatureCNN(nn.Module):
    """The Nature-DQN network: pixels /255, convs 32×8×8 stride 4, 64×4×4 stride 2, 64×3×3 stride 1, ReLU
    after each: an 84×84 input gives a (64, 7, 7) feature map. As ``Eyes`` it is a body; as ``Model`` (given
    ``out_shape``) it adds the paper's head, Linear(3136, 512) → ReLU → Linear(512, out).

    Args:
        in_shape: one observation's shape (C, H, W), pixels in [0, 255] (inferred).
        out_shape: ``None`` (a body: the (64, H', W') feature map) or the head's output shape.
        hidden_dim: the head's hidden units (512 in the paper).
    """

    def __init__(self, in_shape: Any, out_shape: Any = None, hidden_dim: int = 512):
        super().__init__()
        c, h, w = image_shape(in_shape, "NatureCNN", gray=False, fix=_STATES)
        self.in_shape = (c, h, w)
        self.out_shape = as_shape(out_shape, "out_shape", "NatureCNN")
        layers: list[nn.Module] = []
        for out_c, k, s in ((32, 8, 4), (64, 4, 2), (64, 3, 1)):
            h, w = (h - k) // s + 1, (w - k) // s + 1
            if h < 1 or w < 1:
                raise UserError(f"NatureCNN: {list(in_shape)} images are too small (it needs at least 36×36); "
                                "use 84×84 frames or Eyes=CNN")
            layers += [nn.Conv2d(c, out_c, k, stride=s), nn.ReLU()]
            c = out_c
        self.body = nn.Sequential(*layers)
        self.feature_shape = (c, h, w)
        self.head = None
        if self.out_shape is not None:
            self.head = nn.Sequential(nn.Flatten(1), nn.Linear(c * h * w, int(hidden_dim)), nn.ReLU(),
                                      nn.Linear(int(hidden_dim), math.prod(self.out_shape)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.body(x.float() / 255.0)
        return apply_head(self.head, self.out_shape, out)


AtariCNN = NatureCNN


class DrQAtariAug(nn.Module):
    """DrQ's augmentation as dopamine's Atari-100k agents apply it (``drq_image_augmentation`` in
    labs/atari_100k/atari_100k_rainbow_agent.py, Apache-2.0): edge-pad every image by ``pad``, crop it back
    at a random offset in ``[0, 2 pad)`` per axis (``jax.random.randint``'s ``maxval`` is exclusive: shifts
    −4…+3 for pad 4, where DrQ-v2's ``RandomShiftsAug`` draws −4…+4), then multiply it by the intensity
    noise ``1 + scale · clip(N(0, 1), −2, 2)``, one draw per image (Schwarzer et al. 2020). One crop and one
    noise draw cover all the stacked frames of an observation, as dopamine's (H, W, stack) images.

    The noise is multiplicative, so scaling pixels by 1/255 before (dopamine) or after (here, in the
    network) gives the same numbers. Takes (N, C, H, W) batches (integers are cast to float) and returns
    float ones of the same shape.

    Args:
        pad: the padding, in pixels (dopamine's ``img_pad=4``).
        scale: the intensity noise's scale (dopamine's ``scale=0.05``; 0: none).
        in_shape: one input's shape (inferred; checked to be an image).
    """

    def __init__(self, pad: int = 4, scale: float = 0.05, in_shape: Any = None):
        super().__init__()
        self.pad, self.scale = int(pad), float(scale)
        if self.pad < 0 or self.scale < 0:
            raise UserError(f"DrQAtariAug: pad and scale must be ≥ 0, not pad={pad}, scale={scale}")
        if in_shape is not None:
            image_shape(in_shape, "DrQAtariAug", gray=False, fix="; drop Aug (Aug=null) or train from pixels")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x if x.is_floating_point() else x.float()
        n, _, h, w = x.shape
        if self.pad:
            p = self.pad
            shifts = torch.randint(0, 2 * p, (n, 2), device=x.device).tolist()
            padded = F.pad(x, (p, p, p, p), mode="replicate")
            x = torch.stack([padded[i, :, dy:dy + h, dx:dx + w] for i, (dy, dx) in enumerate(shifts)])
        if self.scale:
            noise = torch.randn(n, 1, 1, 1, device=x.device).clamp_(-2.0, 2.0)
            x = x * (1.0 + self.scale * noise)
        return x
