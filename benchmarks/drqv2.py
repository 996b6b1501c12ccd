"""DrQ-v2's update: the engine's ``DrQV2Agent.learn`` against a bare re-implementation of the reference's.

    .venv/bin/python benchmarks/drqv2.py [--batch 64] [--updates 5] [--repeats 3] [--threads 2] [--accelerate]

``Reference`` below is facebookresearch/drqv2's ``DrQV2Agent.update`` written out plainly (its modules,
``TruncatedNormal`` sampling, separate augmentation of obs and next_obs, encoder with and without grad,
critic then actor step, per-parameter soft update, torch.optim.Adam as it builds them), run on the same
networks' weights and the same batch as the engine's agent. Both sides learn from one batch of real-shaped
pixel observations (DMC from pixels: 3 stacked 84x84 RGB frames, 1-D action); frames/s counts what one
update stands for in DrQ-v2's schedule (an update every 2 agent steps, action repeat 2: 4 frames).
With ``--accelerate`` the engine side runs with ``accelerate=true`` (bf16 autocast of the encoder on CPUs
with native bf16, channels_last); the reference stays fp32. Prints both rates and the ratio engine / bare.

``tests/test_drqv2.py`` checks one update of the engine against ``Reference`` (losses and gradients).
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
from typing import Any

import torch
import torch.nn.functional as F

FRAMES_PER_UPDATE = 4  # update_every 2 agent steps x action repeat 2


def sample_noise(mean: torch.Tensor, std: float, clip: float | None) -> torch.Tensor:
    """drqv2's ``utils.TruncatedNormal(mean, std).sample(clip)``."""
    eps = torch.empty(mean.shape, dtype=mean.dtype, device=mean.device).normal_()  # distributions' _standard_normal
    eps *= std
    if clip is not None:
        eps = torch.clamp(eps, -clip, clip)
    x = mean + eps
    clamped = torch.clamp(x, -1.0 + 1e-6, 1.0 - 1e-6)
    return x - x.detach() + clamped.detach()


def normal_log_prob(mean: torch.Tensor, std: float, x: torch.Tensor) -> torch.Tensor:
    return -((x - mean) ** 2) / (2 * std**2) - torch.log(torch.as_tensor(std)) - 0.5 * torch.log(
        torch.as_tensor(2 * torch.pi))


def random_shifts(x: torch.Tensor, pad: int) -> torch.Tensor:
    """drqv2's ``RandomShiftsAug.forward`` (square images)."""
    n, _, h, w = x.size()
    x = F.pad(x, (pad,) * 4, "replicate")
    eps = 1.0 / (h + 2 * pad)
    arange = torch.linspace(-1.0 + eps, 1.0 - eps, h + 2 * pad, device=x.device, dtype=x.dtype)[:h]
    arange = arange.unsqueeze(0).repeat(h, 1).unsqueeze(2)
    base_grid = torch.cat([arange, arange.transpose(1, 0)], dim=2)
    base_grid = base_grid.unsqueeze(0).repeat(n, 1, 1, 1)
    shift = torch.randint(0, 2 * pad + 1, size=(n, 1, 1, 2), device=x.device, dtype=x.dtype)
    shift *= 2.0 / (h + 2 * pad)
    return F.grid_sample(x, base_grid + shift, padding_mode="zeros", align_corners=False)


class Reference:
    """drqv2's update on copies of an engine agent's networks (the same weights and layout)."""

    def __init__(self, agent: Any, lr: float):
        self.encoder = copy.deepcopy(agent.encoder)
        self.actor = copy.deepcopy(agent.actor)
        self.critic = copy.deepcopy(agent.critic)
        self.critic_target = copy.deepcopy(agent.critic_target)
        self.pad = agent.aug.pad
        self.encoder_opt = torch.optim.Adam(self.encoder.parameters(), lr=lr)
        self.actor_opt = torch.optim.Adam(self.actor.parameters(), lr=lr)
        self.critic_opt = torch.optim.Adam(self.critic.parameters(), lr=lr)
        self.tau, self.clip, self.schedule = agent.critic_tau, agent.stddev_clip, agent.stddev_schedule
        self.critic_grads: list[torch.Tensor] = []  # snapshots for the test, taken right after each backward
        self.actor_grads: list[torch.Tensor] = []

    def actor_forward(self, h: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.actor.policy(self.actor.trunk(h)))

    def critic_forward(self, critic: Any, h: torch.Tensor, action: torch.Tensor):
        ha = torch.cat([critic.trunk(h), action], dim=-1)
        return critic.q1(ha), critic.q2(ha)

    def update(self, batch: dict[str, torch.Tensor], step: int, keep_grads: bool = False) -> dict[str, float]:
        obs, next_obs = batch["obs"], batch["next_obs"]
        action = batch["action"].float().view(obs.shape[0], -1)
        reward, discount = batch["reward"].float().view(-1, 1), batch["discount"].float().view(-1, 1)
        obs = random_shifts(obs.float(), self.pad)
        next_obs = random_shifts(next_obs.float(), self.pad)
        obs = self.encoder(obs)
        with torch.no_grad():
            next_obs = self.encoder(next_obs)
        stddev = self.schedule(step)
        # update_critic
        with torch.no_grad():
            next_action = sample_noise(self.actor_forward(next_obs), stddev, self.clip)
            target_q1, target_q2 = self.critic_forward(self.critic_target, next_obs, next_action)
            target_q = reward + discount * torch.min(target_q1, target_q2)
        q1, q2 = self.critic_forward(self.critic, obs, action)
        critic_loss = F.mse_loss(q1, target_q) + F.mse_loss(q2, target_q)
        self.encoder_opt.zero_grad(set_to_none=True)
        self.critic_opt.zero_grad(set_to_none=True)
        critic_loss.backward()
        if keep_grads:
            self.critic_grads = [p.grad.clone() for p in (*self.encoder.parameters(), *self.critic.parameters())]
        self.critic_opt.step()
        self.encoder_opt.step()
        # update_actor (on detached features; drqv2 also computes the log-probability for its metrics)
        h = obs.detach()
        mean = self.actor_forward(h)
        policy_action = sample_noise(mean, stddev, self.clip)
        normal_log_prob(mean, stddev, policy_action).sum(-1, keepdim=True)
        actor_q1, actor_q2 = self.critic_forward(self.critic, h, policy_action)
        actor_loss = -torch.min(actor_q1, actor_q2).mean()
        self.actor_opt.zero_grad(set_to_none=True)
        actor_loss.backward()
        if keep_grads:
            self.actor_grads = [p.grad.clone() for p in self.actor.parameters()]
        self.actor_opt.step()
        # utils.soft_update_params
        for param, target in zip(self.critic.parameters(), self.critic_target.parameters(), strict=True):
            target.data.copy_(self.tau * param.data + (1 - self.tau) * target.data)
        return {"critic_loss": critic_loss.item(), "actor_loss": actor_loss.item()}


def build(batch_size: int, accelerate: bool = False, seed: int = 0):
    """An engine DrQ-v2 agent for 3x84x84 RGB stacks (9 channels), 1-D action, and a fixed uint8 batch."""
    from ML.agents.drqv2 import DrQV2Agent
    from ML.envs.base import TaskSpec
    from ML.hyperparams import resolve_config

    torch.manual_seed(seed)
    config = resolve_config((), {"task": "drqv2", "batch_size": batch_size, "device": "cpu",
                                 "accelerate": accelerate})
    spec = TaskSpec(suite="DMC", task="cartpole_balance", obs_shape=(9, 84, 84), discrete=False,
                    action_shape=(1,), action_low=-1.0, action_high=1.0)
    agent = DrQV2Agent(spec, config, **config.agent)
    g = torch.Generator().manual_seed(seed)
    batch = {"obs": torch.randint(0, 256, (batch_size, 9, 84, 84), dtype=torch.uint8, generator=g),
             "next_obs": torch.randint(0, 256, (batch_size, 9, 84, 84), dtype=torch.uint8, generator=g),
             "action": torch.rand(batch_size, 1, generator=g) * 2 - 1,
             "reward": torch.rand(batch_size, generator=g),
             "discount": torch.full((batch_size,), 0.99 ** 3)}
    return agent, batch, float(config.lr)


def rate(fn: Any, updates: int) -> tuple[float, float]:
    """(frames/s of wall time, frames/s of CPU time) over ``updates`` calls after a warm-up call."""
    fn()  # warm-up (first-call allocations, optimiser state)
    began, cpu = time.perf_counter(), time.process_time()
    for _ in range(updates):
        fn()
    frames = updates * FRAMES_PER_UPDATE
    return frames / (time.perf_counter() - began), frames / (time.process_time() - cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--updates", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--accelerate", action="store_true", help="engine with accelerate=true (bf16 encoder)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    agent, batch, lr = build(args.batch, args.accelerate)
    reference = Reference(build(args.batch)[0], lr)
    step = 10_000
    engine_rates: list[tuple[float, float]] = []
    bare_rates: list[tuple[float, float]] = []
    for r in range(args.repeats):  # interleaved, alternating which goes first
        sides = [("engine", lambda: agent.learn(batch, step)), ("bare", lambda: reference.update(batch, step))]
        for name, fn in sides if r % 2 == 0 else sides[::-1]:
            (engine_rates if name == "engine" else bare_rates).append(rate(fn, args.updates))
        (e, ec), (b, bc) = engine_rates[-1], bare_rates[-1]
        print(f"repeat {r}: engine {e:7.2f} frames/s ({ec:7.2f} per CPU s)   bare {b:7.2f} frames/s "
              f"({bc:7.2f} per CPU s)   ratio {e / b:.3f} wall, {ec / bc:.3f} CPU", flush=True)
    mode = "accelerate=true" if args.accelerate else "fp32"
    print(f"DrQ-v2 update, batch {args.batch}, 9x84x84 pixels, {args.threads} thread(s), engine {mode}, "
          f"median of {args.repeats}:")
    for i, what in ((0, "frames/s      "), (1, "frames/CPU-s  ")):
        e = statistics.median(r[i] for r in engine_rates)
        b = statistics.median(r[i] for r in bare_rates)
        ratio = statistics.median(x[i] / y[i] for x, y in zip(engine_rates, bare_rates, strict=True))
        print(f"  {what}: engine (DrQV2Agent.learn) {e:7.2f}   bare (drqv2's update) {b:7.2f}   "
              f"ratio engine / bare {ratio:6.3f}   (target >= 1.2)")


if __name__ == "__main__":
    main()
