"""``Transformer``, a pre-norm transformer encoder over tokens made from any input shape, and ``ViT`` (the
same, named for images). ``Eyes=[CNN,Transformer] +eyes.1.depth=5``: a conv stem feeding 5 layers."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from ML.blocks.architectures import apply_head, as_shape
from ML.errors import UserError


class Transformer(nn.Module):
    """Transformer encoder. Inputs become tokens by their shape: an image or feature map (C, H, W) is cut
    into ``patch_size`` × ``patch_size`` patches (a strided convolution; by default the smallest power of two
    giving ≤ 64 tokens, so a CNN's 8×8 feature map is 64 tokens of its channels), a sequence (L, D) is L
    tokens, a vector (D,) one token. Tokens are projected to ``dim``, a learned class token and positional
    embeddings are added, then ``depth`` pre-norm encoder layers (GELU MLP of ``mlp_ratio · dim``) and a
    final LayerNorm. The output is the class token's ``dim`` features (a body), or a linear head on it.

    Args:
        in_shape: one input's shape: (C, H, W), (L, D) or (D,) (inferred).
        out_shape: ``None`` for a body (``dim`` features), else a linear head's shape.
        dim: token width.
        depth: encoder layers.
        heads: attention heads (must divide ``dim``).
        mlp_ratio: the MLP's hidden width over ``dim``.
        dropout: dropout in attention and MLP.
        patch_size: patch side for image inputs (``None``: automatic, see above).
    """

    def __init__(self, in_shape: Any, out_shape: Any = None, dim: int = 128, depth: int = 2, heads: int = 4,
                 mlp_ratio: float = 2.0, dropout: float = 0.0, patch_size: Any = None):
        super().__init__()
        name = type(self).__name__
        shape = as_shape(in_shape, "in_shape", name)
        if shape is None:
            raise UserError(f"{name} needs in_shape; pass eyes.in_shape=[...]")
        self.in_shape, self.out_shape = shape, as_shape(out_shape, "out_shape", name)
        dim, depth, heads = int(dim), int(depth), int(heads)
        if dim <= 0 or depth < 0 or heads <= 0 or dim % heads:
            raise UserError(f"{name}: dim > 0 divisible by heads, depth ≥ 0 (got dim={dim}, heads={heads}, "
                            f"depth={depth})")
        if len(shape) == 3:
            c, h, w = shape
            p = int(patch_size) if patch_size else 1
            while not patch_size and (h // p) * (w // p) > 64:
                p *= 2
            if p <= 0 or p > min(h, w):
                raise UserError(f"{name}: patch_size must be between 1 and {min(h, w)}, not {patch_size}")
            self.embed: nn.Module = nn.Conv2d(c, dim, p, p)
            tokens = (h // p) * (w // p)
        elif len(shape) == 2:
            self.embed, tokens = nn.Linear(shape[1], dim), shape[0]
        elif len(shape) == 1:
            self.embed, tokens = nn.Linear(shape[0], dim), 1
        else:
            raise UserError(f"{name} takes inputs shaped (C, H, W), (L, D) or (D,), not {list(shape)}")
        self.cls = nn.Parameter(torch.zeros(1, 1, dim))
        self.position = nn.Parameter(torch.randn(1, tokens + 1, dim) * 0.02)
        layer = nn.TransformerEncoderLayer(dim, heads, int(dim * float(mlp_ratio)), float(dropout),
                                           activation="gelu", batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False) if depth else None
        self.norm = nn.LayerNorm(dim)
        self.out_features = dim
        self.head = nn.Linear(dim, math.prod(self.out_shape)) if self.out_shape is not None else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if len(self.in_shape) == 3:
            tokens = self.embed(x).flatten(2).transpose(1, 2)  # (B, tokens, dim)
        elif len(self.in_shape) == 2:
            tokens = self.embed(x)
        else:
            tokens = self.embed(x.flatten(1)).unsqueeze(1)
        tokens = torch.cat([self.cls.expand(len(tokens), -1, -1), tokens], 1) + self.position
        if self.encoder is not None:
            tokens = self.encoder(tokens)
        out = self.norm(tokens[:, 0])
        return apply_head(self.head, self.out_shape, out)


class ViT(Transformer):
    """Vision transformer: ``Transformer`` on image patches (``patch_size`` automatic unless given)."""


__all__ = ["Transformer", "ViT"]
