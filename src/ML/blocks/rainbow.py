"""Dopamine's ``FullRainbowNetwork`` (dopamine/jax/networks.py, Apache-2.0) in PyTorch: the network of its
Atari-100k agents (DER, DrQ, DrQ(ε), and the torso SPR builds on), with its dueling, C51 (``num_atoms``)
and noisy-net options.

Ported line by line from dopamine's flax code (google/dopamine, ``jax/networks.py``: ``FullRainbowNetwork``,
``feature_layer``, ``NoisyNetwork``):

- torso: three ``nn.Conv`` layers 32×8×8/4, 64×4×4/2, 64×3×3/1 with flax's default ``SAME`` padding (an
  84×84 frame stack → 64×11×11 = 7,744 features; the second conv pads 1 before and 2 after, as XLA does),
  ReLU after each, flattened;
- one shared 512-unit layer (``Dense`` or ``NoisyNetwork``) and ReLU, then the heads: dueling (advantage
  ``num_actions × num_atoms`` and value ``num_atoms``, ``logits = value + adv − mean_a(adv)``) or one
  ``num_actions × num_atoms`` layer;
- distributional: ``q = Σ support · softmax(logits)`` over the atoms; otherwise ``q = Σ logits`` (one atom);
- initialisers as flax's: ``xavier_uniform`` (``variance_scaling(1, fan_avg, uniform)``) kernels for convs and
  dense layers, zero biases; noisy layers ``μ ~ U(±1/√in)``, ``σ = 0.1/√in`` (dopamine's σ0 = 0.1).

Inputs are uint8 or float pixels in [0, 255] shaped (C, H, W) (dopamine: (H, W, C) already divided by 255;
dividing here instead is the same math, and lets the replay keep uint8). The flatten is (C, H, W)-major
where flax's is (H, W, C)-major: a fixed permutation of the shared layer's input rows, which the i.i.d.
initialisation cannot tell apart.

Noise: dopamine draws factorised Gaussian noise from one JAX key per call (the same key for every noisy
layer of that call) and none in ``eval_mode``. Here every training-mode forward draws fresh factorised noise
per layer from torch's generator (``fresh_noise=False`` reuses the last draw, ``share_noise`` copies it to a
target network, as dopamine's double-DQN target passes one key to both networks); ``eval()`` turns noise
off. Torch cannot reproduce JAX's key streams, so the draws differ in value, not in distribution.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from ML.blocks.architectures import as_shape, image_shape
from ML.errors import UserError


class RainbowOutput(NamedTuple):
    """dopamine's ``RainbowNetworkType`` (``DQNNetworkType`` without atoms: logits/probabilities are None)."""

    q_values: torch.Tensor
    logits: torch.Tensor | None
    probabilities: torch.Tensor | None


def same_pads(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """XLA's ``SAME`` padding of one axis (``lax.padtype_to_pads``): output ``ceil(size/stride)``, the total
    pad split with the smaller half first."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class SameConv2d(nn.Conv2d):
    """``nn.Conv2d`` with flax's default ``SAME`` padding (asymmetric where XLA's is) and flax's
    ``xavier_uniform`` kernel, zero bias."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, stride: int):
        super().__init__(in_channels, out_channels, kernel, stride=stride)
        nn.init.xavier_uniform_(self.weight)
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def out_size(self, size: int) -> int:
        return -(-size // self.stride[0])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k, s = self.kernel_size[0], self.stride[0]
        top, bottom = same_pads(x.shape[-2], k, s)
        left, right = same_pads(x.shape[-1], k, s)
        if top == bottom and left == right:  # symmetric: the convolution pads, without a padded copy
            return F.conv2d(x, self.weight, self.bias, self.stride, (top, left))
        return F.conv2d(F.pad(x, (left, right, top, bottom)), self.weight, self.bias, self.stride)


def dense(in_features: int, out_features: int) -> nn.Linear:
    """flax ``nn.Dense(features, kernel_init=xavier_uniform())``: zero bias."""
    layer = nn.Linear(in_features, out_features)
    nn.init.xavier_uniform_(layer.weight)
    nn.init.zeros_(layer.bias)
    return layer


class NoisyLinear(nn.Module):
    """dopamine's ``NoisyNetwork`` (Fortunato et al. 2018, factorised Gaussian noise): ``y = x (μ_w + σ_w ε_w)
    + μ_b + σ_b ε_b`` with ``ε_w = f(p) f(q)ᵀ``, ``ε_b = f(q)``, ``f(x) = sign(x) √|x|``, ``p ~ N(0, 1)^in``,
    ``q ~ N(0, 1)^out``; ``μ ~ U(−1/√in, 1/√in)``, ``σ = sigma0/√in`` (0.1 here; SPR's NoisyNetwork has
    0.5). No noise in ``eval()`` mode, nor in ``mean(x)``."""

    eps_in: torch.Tensor  # buffers: the current factorised noise
    eps_out: torch.Tensor

    def __init__(self, in_features: int, out_features: int, sigma0: float = 0.1):
        super().__init__()
        self.in_features, self.out_features = int(in_features), int(out_features)
        bound = 1.0 / math.sqrt(self.in_features)
        self.weight_mu = nn.Parameter(torch.empty(self.out_features, self.in_features).uniform_(-bound, bound))
        sigma = float(sigma0) * bound
        self.weight_sigma = nn.Parameter(torch.full((self.out_features, self.in_features), sigma))
        self.bias_mu = nn.Parameter(torch.empty(self.out_features).uniform_(-bound, bound))
        self.bias_sigma = nn.Parameter(torch.full((self.out_features,), sigma))
        self.register_buffer("eps_in", torch.zeros(self.in_features), persistent=False)
        self.register_buffer("eps_out", torch.zeros(self.out_features), persistent=False)

    @staticmethod
    def _f(x: torch.Tensor) -> torch.Tensor:
        return x.sign() * x.abs().sqrt()

    def reset_noise(self) -> None:
        """Draw new factorised noise (dopamine: a new key)."""
        self.eps_in.copy_(self._f(torch.randn_like(self.eps_in)))
        self.eps_out.copy_(self._f(torch.randn_like(self.eps_out)))

    def mean(self, x: torch.Tensor) -> torch.Tensor:
        """The layer without noise (SPR's ``eval_mode=True`` calls, in training too)."""
        return F.linear(x, self.weight_mu, self.bias_mu)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return self.mean(x)
        bias = self.bias_mu + self.bias_sigma * self.eps_out
        if x.numel() == x.shape[-1]:  # one row (acting): x (μ + σ ⊙ ε_out ε_inᵀ)ᵀ = x μᵀ + ((x ε_in) σᵀ) ε_out,
            # without the in × out noisy weight, which costs more than the product itself
            return F.linear(x, self.weight_mu, bias) + F.linear(x * self.eps_in, self.weight_sigma) * self.eps_out
        weight = self.weight_mu + self.weight_sigma * torch.outer(self.eps_out, self.eps_in)
        return F.linear(x, weight, bias)


def renormalize(x: torch.Tensor) -> torch.Tensor:
    """SPR's ``renormalize``: each row min-max scaled over all its features, ``(x − min) / (max − min + 1e-5)``."""
    flat = x.flatten(1)
    low, high = flat.min(1, keepdim=True).values, flat.max(1, keepdim=True).values
    return ((flat - low) / (high - low + 1e-5)).view_as(x)


class FullRainbowNetwork(nn.Module):
    """dopamine's ``FullRainbowNetwork`` as a ``Model`` (``Eyes: Identity``): frame stacks → Q-values
    ``(batch, num_actions)``; ``outputs(x)`` also gives the C51 logits and probabilities
    ``(batch, num_actions, num_atoms)``. See the module docstring for what is ported and how.

    Args:
        in_shape: one observation's shape (C, H, W), pixels in [0, 255] (inferred).
        out_shape: ``(num_actions,)`` (inferred).
        num_atoms: atoms of the value distribution (1: DQN; 51: C51/Rainbow/DER).
        noisy: noisy dense layers (Fortunato et al. 2018) instead of plain ones.
        dueling: the dueling heads (Wang et al. 2016).
        distributional: Q-values as the expectation of ``softmax(logits)`` over ``support``; otherwise the
            sum of the logits over the atoms.
        vmax, vmin: the support ``linspace(vmin, vmax, num_atoms)`` (``vmin`` None: ``-vmax``), as
            ``JaxFullRainbowAgent``.
        hidden_dim: the shared dense layer's units (512).
        renormalize: min-max scale each observation's torso output to [0, 1] before the shared layer
            (SPR's ``SPRNetwork.encode``, ``renormalize=True`` there).
        sigma0: the noisy layers' initial σ × √in (dopamine's 0.1; SPR's NoisyNetwork 0.5).
    """

    def __init__(self, in_shape: Any, out_shape: Any, num_atoms: int = 51, noisy: bool = True,
                 dueling: bool = True, distributional: bool = True, vmax: float = 10.0,
                 vmin: float | None = None, hidden_dim: int = 512, renormalize: bool = False,
                 sigma0: float = 0.1):
        super().__init__()
        c, h, w = image_shape(in_shape, "FullRainbowNetwork", gray=False,
                              fix="; it is an Atari network (84×84 frame stacks)")
        out = as_shape(out_shape, "out_shape", "FullRainbowNetwork")
        if out is None or len(out) != 1:
            raise UserError(f"FullRainbowNetwork outputs one Q-value per action, so out_shape is (num_actions,), "
                            f"not {out_shape!r}; use it as the Model of a discrete-action agent")
        self.in_shape, self.out_shape = (c, h, w), out
        self.num_actions, self.num_atoms = out[0], int(num_atoms)
        self.noisy, self.dueling, self.distributional = bool(noisy), bool(dueling), bool(distributional)
        self.renormalize = bool(renormalize)
        if self.num_atoms < 1 or (self.distributional and self.num_atoms < 2):
            raise UserError(f"FullRainbowNetwork: num_atoms must be ≥ 1, and ≥ 2 when distributional "
                            f"(got num_atoms={num_atoms}, distributional={distributional})")
        vmax = float(vmax)
        vmin = float(vmin) if vmin else -vmax  # dopamine: ``vmin if vmin else -vmax``
        self.register_buffer("support", torch.linspace(vmin, vmax, self.num_atoms), persistent=False)
        convs: list[nn.Module] = []
        for features, kernel, stride in ((32, 8, 4), (64, 4, 2), (64, 3, 1)):
            conv = SameConv2d(c, features, kernel, stride)
            convs += [conv, nn.ReLU()]
            c, h, w = features, conv.out_size(h), conv.out_size(w)
        self.torso = nn.Sequential(*convs, nn.Flatten(1))
        self.feature_dim = c * h * w
        self.latent_shape = (c, h, w)

        def layer(i: int, o: int) -> nn.Module:
            return NoisyLinear(i, o, sigma0) if self.noisy else dense(i, o)

        self.hidden = layer(self.feature_dim, int(hidden_dim))
        if self.dueling:
            self.advantage = layer(int(hidden_dim), self.num_actions * self.num_atoms)
            self.value = layer(int(hidden_dim), self.num_atoms)
        else:
            self.head = layer(int(hidden_dim), self.num_actions * self.num_atoms)
        if self.noisy:
            self.reset_noise()

    def noisy_layers(self) -> list[NoisyLinear]:
        return [m for m in self.modules() if isinstance(m, NoisyLinear)]

    def reset_noise(self) -> None:
        """New noise in every noisy layer (nothing without noisy layers)."""
        with torch.no_grad():
            for layer in self.noisy_layers():
                layer.reset_noise()

    def share_noise(self, other: FullRainbowNetwork) -> None:
        """Use ``other``'s current noise (dopamine's target and online networks share one key per update)."""
        with torch.no_grad():
            for mine, theirs in zip(self.noisy_layers(), other.noisy_layers(), strict=True):
                mine.eps_in.copy_(theirs.eps_in)
                mine.eps_out.copy_(theirs.eps_out)

    def outputs(self, x: torch.Tensor, fresh_noise: bool = True) -> RainbowOutput:
        """Q-values, and with ``distributional`` the logits and probabilities over the atoms."""
        if self.noisy and self.training and fresh_noise:
            self.reset_noise()
        return self.heads(self.encode(x).flatten(1))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The torso's feature map ``latent_shape`` per observation (renormalized when set): SPR's latent."""
        x = self.torso[:-1](x.float() / 255.0)
        return renormalize(x) if self.renormalize else x

    def project(self, latent: torch.Tensor) -> torch.Tensor:
        """The shared layer without noise and without its ReLU (SPR's ``project`` with ``eval_mode=True``)."""
        return self.hidden.mean(latent) if isinstance(self.hidden, NoisyLinear) else self.hidden(latent)

    def heads(self, latent: torch.Tensor) -> RainbowOutput:
        """The outputs from flat latents (the current noise)."""
        x = F.relu(self.hidden(latent))
        if self.dueling:
            adv = self.advantage(x).view(-1, self.num_actions, self.num_atoms)
            value = self.value(x).view(-1, 1, self.num_atoms)
            logits = value + (adv - adv.mean(1, keepdim=True))
        else:
            logits = self.head(x).view(-1, self.num_actions, self.num_atoms)
        if self.distributional:
            probabilities = logits.softmax(-1)
            return RainbowOutput((self.support * probabilities).sum(-1), logits, probabilities)
        return RainbowOutput(logits.sum(-1), None, None)

    def forward(self, x: torch.Tensor, fresh_noise: bool = True) -> torch.Tensor:
        return self.outputs(x, fresh_noise).q_values
