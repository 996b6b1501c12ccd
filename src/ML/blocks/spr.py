"""SPR's self-prediction parts (Schwarzer et al. 2021) as dopamine writes them in
``labs/atari_100k/spr_networks.py`` (google/dopamine, Apache-2.0): the convolutional transition model that
rolls a latent forward under actions, and the predictor head."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ML.blocks.rainbow import SameConv2d, renormalize


class TransitionModel(nn.Module):
    """dopamine's ``TransitionModel`` (an ``nn.scan`` of ``ConvTMCell``): at each step the action's one-hot
    is broadcast to planes and concatenated to the latent's channels, then two 3×3 SAME convs (xavier
    uniform, zero bias) with a ReLU after each, then ``renormalize``. The cell's batch norm is built but never
    called there, so there is none here.

    Args:
        num_actions: the one-hot's length.
        channels: the latent's channels (64: the torso's).
        renormalize: min-max scale each predicted latent (SPR's default).
    """

    def __init__(self, num_actions: int, channels: int = 64, renormalize: bool = True):
        super().__init__()
        self.num_actions, self.renormalize = int(num_actions), bool(renormalize)
        self.conv1 = SameConv2d(channels + self.num_actions, channels, 3, 1)
        self.conv2 = SameConv2d(channels, channels, 3, 1)

    def step(self, latent: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """One step: (B, C, H, W) latents and (B,) actions → the next latents."""
        planes = F.one_hot(action.long(), self.num_actions).to(latent.dtype)[:, :, None, None]
        x = torch.cat([latent, planes.expand(-1, -1, *latent.shape[-2:])], 1)
        x = F.relu(self.conv2(F.relu(self.conv1(x))))
        return renormalize(x) if self.renormalize else x

    def forward(self, latent: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Latents (B, C, H, W) rolled through actions (B, K): the K predicted latents (B, K, C, H, W)."""
        out = []
        for k in range(actions.shape[1]):
            latent = self.step(latent, actions[:, k])
            out.append(latent)
        return torch.stack(out, 1)


def flax_dense(in_features: int, out_features: int) -> nn.Linear:
    """flax's default ``nn.Dense``: ``lecun_normal`` kernel (a normal truncated at ±2σ, rescaled to variance
    1/in) and zero bias: SPR's ``predictor = nn.Dense(512)``."""
    layer = nn.Linear(in_features, out_features)
    std = math.sqrt(1.0 / in_features) / 0.87962566103423978  # variance_scaling's truncated-normal factor
    nn.init.trunc_normal_(layer.weight, std=std, a=-2 * std, b=2 * std)
    nn.init.zeros_(layer.bias)
    return layer
