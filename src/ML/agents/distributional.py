"""C51's categorical projection (Bellemare et al. 2017, eq. 7), from dopamine's
``jax/agents/rainbow/rainbow_agent.py:project_distribution`` (Apache-2.0), batched."""

from __future__ import annotations

import torch


def project_distribution(supports: torch.Tensor, weights: torch.Tensor,
                         target_support: torch.Tensor) -> torch.Tensor:
    """Project each row's distribution (``weights`` on atoms ``supports``, both (B, N)) onto the evenly
    spaced ``target_support`` (N,): ``Σ_j clip(1 − |clip(z_j, vmin, vmax) − z_i| / Δz, 0, 1) p_j``."""
    v_min, v_max = target_support[0], target_support[-1]
    delta_z = (v_max - v_min) / (target_support.shape[0] - 1)
    clipped = supports.clamp(v_min, v_max)                                       # (B, N)
    quotient = 1 - (clipped[:, None, :] - target_support[None, :, None]).abs() / delta_z   # (B, N_i, N_j)
    return (quotient.clamp(0, 1) * weights[:, None, :]).sum(-1)


def categorical_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of ``target`` distributions against ``logits`` (both (B, N)), one value a row
    (dopamine's ``softmax_cross_entropy_loss_with_logits``)."""
    return -(target * logits.log_softmax(-1)).sum(-1)
