"""``clip_grad_norm``: gradient clipping by the global 2-norm in a few public tensor calls.

Why: it runs once per update of a small network (DQN on classic control), where
``torch.nn.utils.clip_grad_norm_``'s per-call Python (grouping by device and dtype, argument checks) costs as
much as the math (~20 µs of a ~40 µs clip, ``benchmarks/optim.py``). Only public torch functions: private
kernels (``torch._foreach_*``, ``torch._fused_adam_``) change without notice between torch releases, so the
optimisers are torch's own (``torch.optim.Adam(fused=True)``, ``ML.blocks.network.build_optimizer``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def clip_grad_norm(params: Sequence[torch.Tensor], max_norm: float) -> None:
    """``torch.nn.utils.clip_grad_norm_(params, max_norm)``'s math: the 2-norm over every gradient, each
    scaled by ``min(1, max_norm / (norm + 1e-6))``; the result is bitwise torch's (``tests/test_dqn.py``)."""
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    total = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))
    scale = torch.clamp(max_norm / (total + 1e-6), max=1.0)
    for g in grads:
        g.mul_(scale)
