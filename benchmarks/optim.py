"""The optimiser step on public torch APIs against the private-kernel step it replaced, in one process.

    .venv/bin/python benchmarks/optim.py [--steps 2000] [--repeats 5] [--threads 1]

Two workloads, each timed as the agent runs it (gradients in place, one optimiser step and what goes with it):

- DQN: CartPole's Q network (the ``dqn`` recipe: 4 → 64 → 64 → 2), gradient clipping at 10, then the step.
- DrQ-v2: the ``drqv2`` agent's encoder, critic and actor optimisers (DMC pixels, 9×84×84), then the target
  critic's soft update.

``old``: what ``ML.blocks.optim`` did until it was removed — ``torch._fused_adam_`` called straight from a
``torch.optim.Adam`` subclass's own ``step``, gradient clipping through ``torch._foreach_norm``/``_foreach_mul_``,
the soft update through ``torch._foreach_lerp_``. It is kept below only as the measuring stick; these private
functions change without notice between torch releases, so the engine no longer calls them.

``new``: what the engine does now — ``torch.optim.Adam(fused=True)``, ``ML.blocks.optim.clip_grad_norm`` (public
per-tensor calls) and ``torch.optim.swa_utils.get_ema_multi_avg_fn`` for the soft update.

Both sides step the same networks' parameter copies with the same gradients, alternating which goes first in
each repeat; prints both rates (steps/s, median of the repeats) and the ratio new / old, and the difference
per step as a share of one whole agent update (``agent.learn`` on a real batch, timed here too).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import torch


class OldFusedAdam(torch.optim.Adam):
    """The replaced ``ML.blocks.optim.FusedAdam`` step (private kernel), for measuring only."""

    def __init__(self, params: Any, **kwargs: Any):
        super().__init__(params, fused=True, **kwargs)

    def step(self, closure: Any = None) -> Any:
        with torch.no_grad():
            for group in self.param_groups:
                params: list[torch.Tensor] = []
                grads: list[torch.Tensor] = []
                exp_avgs: list[torch.Tensor] = []
                exp_avg_sqs: list[torch.Tensor] = []
                max_exp_avg_sqs: list[torch.Tensor] = []
                steps: list[torch.Tensor] = []
                self._init_group(group, params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, steps)
                beta1, beta2 = group["betas"]
                torch._foreach_add_(steps, 1)
                torch._fused_adam_(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, steps,
                                   amsgrad=group["amsgrad"], lr=group["lr"], beta1=float(beta1),
                                   beta2=float(beta2), weight_decay=group["weight_decay"], eps=group["eps"],
                                   maximize=group["maximize"], grad_scale=None, found_inf=None)
        return None

    step.hooked = True  # type: ignore[attr-defined]


def old_clip(params: list[torch.Tensor], max_norm: float) -> None:
    grads = [p.grad for p in params if p.grad is not None]
    total = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))
    torch._foreach_mul_(grads, torch.clamp(max_norm / (total + 1e-6), max=1.0))


def copies(module: torch.nn.Module) -> list[torch.nn.Parameter]:
    """Parameters of the same shapes and values, with gradients set once (the step never clears them)."""
    out = [torch.nn.Parameter(p.detach().clone()) for p in module.parameters()]
    for p in out:
        p.grad = torch.randn_like(p) * 1e-2
    return out


def dqn_sides() -> tuple[Callable[[], None], Callable[[], None], Callable[[], Any]]:
    from ML.agents.dqn import DQNAgent
    from ML.blocks.optim import clip_grad_norm
    from ML.checkpoints import agent_settings
    from ML.envs.classic import Classic
    from ML.hyperparams import resolve_config

    config = resolve_config((), {"task": "dqn", "device": "cpu"})
    agent = DQNAgent(Classic("CartPole-v1").task_spec, agent_settings(config), **config.agent)
    old_p, new_p = copies(agent.q), copies(agent.q)
    old_opt = OldFusedAdam(old_p, lr=1e-3)
    new_opt = torch.optim.Adam(new_p, lr=1e-3, fused=True)

    def old() -> None:
        old_clip(old_p, 10.0)
        old_opt.step()

    def new() -> None:
        clip_grad_norm(new_p, 10.0)
        new_opt.step()

    batch = {"obs": torch.randn(128, 4), "next_obs": torch.randn(128, 4), "action": torch.randint(0, 2, (128,)),
             "reward": torch.randn(128), "discount": torch.full((128,), 0.97)}
    return old, new, lambda: agent.learn(batch)


def drqv2_sides() -> tuple[Callable[[], None], Callable[[], None], Callable[[], Any]]:
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from benchmarks.drqv2 import build

    agent, batch, lr = build(batch_size=64)
    sides = []
    for make in (OldFusedAdam, lambda ps, lr: torch.optim.Adam(ps, lr=lr, fused=True)):
        nets = [copies(m) for m in (agent.encoder, agent.critic, agent.actor)]
        target = [p.detach().clone() for p in nets[1]]
        sides.append(([make(ps, lr=lr) for ps in nets], nets[1], target))
    (old_opts, old_critic, old_target), (new_opts, new_critic, new_target) = sides

    def old() -> None:
        for opt in old_opts:
            opt.step()
        with torch.no_grad():
            torch._foreach_lerp_(old_target, old_critic, agent.critic_tau)

    def new() -> None:
        for opt in new_opts:
            opt.step()
        ema = torch.optim.swa_utils.get_ema_multi_avg_fn(1.0 - agent.critic_tau)  # built per update, as the agent
        ema(new_target, new_critic, None)

    return old, new, lambda: agent.learn(batch, step=10_000)


def rate(fn: Callable[[], Any], steps: int) -> float:
    start = time.perf_counter()
    for _ in range(steps):
        fn()
    return steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    for name, sides, steps in (("DQN", dqn_sides, args.steps), ("DrQ-v2", drqv2_sides, max(args.steps // 10, 10))):
        old, new, update = sides()
        for fn in (old, new):
            rate(fn, 20)  # warm-up: state allocation, first-call imports
        olds, news = [], []
        for repeat in range(args.repeats):
            order = ((old, olds), (new, news)) if repeat % 2 == 0 else ((new, news), (old, olds))
            for fn, rates in order:
                rates.append(rate(fn, steps))
        o, n = statistics.median(olds), statistics.median(news)
        updates = max(steps // 20, 5)
        rate(update, 3)
        u = rate(update, updates)
        share = (1 / n - 1 / o) * u
        print(f"{name}: old {o:,.0f} steps/s, new {n:,.0f} steps/s, new/old {n / o:.2f}; "
              f"whole update {u:,.1f}/s: new costs {1e6 * (1 / n - 1 / o):+.1f} µs a step, "
              f"{100 * share:+.1f}% of an update")


if __name__ == "__main__":
    main()
