"""``FusedAdam``: ``torch.optim.Adam(fused=True)`` stepped straight through its fused kernel.

Why: a small network's update (DQN on classic control) spends more time in the Python around the kernel
than in the kernel: torch.optim's step wrapper (hooks, profiler ranges, grad-mode switches, the per-device
grouping) costs ~0.3 ms a step here. And the first call of torch.optim's ``add_param_group``, ``step``,
``zero_grad``, ``state_dict`` or ``load_state_dict`` (a checkpoint's save and load) imports ``torch._dynamo``
(~2 s of CPU at start-up), only to mark those methods as not traceable by ``torch.compile``, which an eager
step never needs.

It is a subclass of ``torch.optim.Adam``: the same state (``exp_avg``, ``exp_avg_sq``, ``step``), the same
``state_dict``, schedulers and ``isinstance`` checks work, and the same ``torch._fused_adam_`` kernel does
the math, so parameters after each step are bitwise those of ``torch.optim.Adam(fused=True)``
(``tests/test_dqn.py``). Anything the fast path does not cover (a closure, parameters on several devices or
of several dtypes) goes through Adam's own ``step``.
"""

from __future__ import annotations

from typing import Any

import torch


class FusedAdam(torch.optim.Adam):
    """Adam with ``fused=True``; arguments as ``torch.optim.Adam``."""

    def __init__(self, params: Any, **kwargs: Any):
        kwargs["fused"] = True
        super().__init__(params, **kwargs)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        # the undecorated method: its decorator only imports torch._dynamo to keep torch.compile out
        torch.optim.Optimizer.add_param_group.__wrapped__(self, param_group)

    def state_dict(self) -> dict[str, Any]:
        return torch.optim.Optimizer.state_dict.__wrapped__(self)  # (undecorated, as add_param_group)

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        torch.optim.Optimizer.load_state_dict.__wrapped__(self, state_dict)

    def zero_grad(self, set_to_none: bool = True) -> None:
        for group in self.param_groups:
            grads = [p.grad for p in group["params"] if p.grad is not None]
            if set_to_none:
                for p in group["params"]:
                    p.grad = None
            elif grads:
                torch._foreach_zero_(grads)

    def _mixed(self) -> bool:
        params = [p for group in self.param_groups for p in group["params"]]
        return any(p.device != params[0].device or p.dtype != params[0].dtype for p in params)

    def step(self, closure: Any = None) -> Any:
        if closure is not None or self._mixed():
            return super().step(closure)  # torch's own path (and its grouping by device and dtype)
        with torch.no_grad():
            for group in self.param_groups:
                params: list[torch.Tensor] = []
                grads: list[torch.Tensor] = []
                exp_avgs: list[torch.Tensor] = []
                exp_avg_sqs: list[torch.Tensor] = []
                max_exp_avg_sqs: list[torch.Tensor] = []
                steps: list[torch.Tensor] = []
                self._init_group(group, params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, steps)
                if not params:
                    continue
                beta1, beta2 = group["betas"]
                torch._foreach_add_(steps, 1)
                kernel = torch._fused_adamw_ if group.get("decoupled_weight_decay") else torch._fused_adam_
                kernel(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, steps, amsgrad=group["amsgrad"],
                       lr=group["lr"], beta1=float(beta1), beta2=float(beta2),
                       weight_decay=group["weight_decay"], eps=group["eps"], maximize=group["maximize"],
                       grad_scale=None, found_inf=None)
        return None

    step.hooked = True  # type: ignore[attr-defined]  # torch.optim: do not wrap step in its profiling hook


def clip_grad_norm(params: list[torch.Tensor], max_norm: float) -> None:
    """``torch.nn.utils.clip_grad_norm_(params, max_norm, foreach=True)``'s math (2-norm over every
    gradient, scaled by ``min(1, max_norm / (norm + 1e-6))``) in four kernel calls, without its per-call
    Python checks: it runs once per update of a small network, where those checks cost as much as the math."""
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    total = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))
    torch._foreach_mul_(grads, torch.clamp(max_norm / (total + 1e-6), max=1.0))
