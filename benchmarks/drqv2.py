"""DrQ-v2: the engine's update and training loop against bare re-implementations of the reference's, frames/s.

    .venv/bin/python benchmarks/drqv2.py [--batch 64] [--updates 5] [--repeats 3] [--threads 1] [--accelerate]
    .venv/bin/python benchmarks/drqv2.py --loop [--seed-steps 200] [--learn-steps 200] [--threads 1]

``Reference`` below is facebookresearch/drqv2's ``DrQV2Agent`` (``act`` and ``update``) written out plainly
(its modules, ``TruncatedNormal`` sampling, separate augmentation of obs and next_obs, encoder with and
without grad, critic then actor step, per-parameter soft update, torch.optim.Adam as it builds them), on the
same networks' weights as the engine's agent.

Update mode (default): both sides learn from one batch of real-shaped pixel observations (DMC from pixels:
3 stacked 84x84 RGB frames, 1-D action); frames/s counts what one update stands for in DrQ-v2's schedule
(an update every 2 agent steps, action repeat 2: 4 frames).

Loop mode (``--loop``): the engine's whole training loop, ``ML.launch(task=drqv2, env.task=cartpole_balance)``
through its own run path (replay.h5, train.csv, run.json), against a bare loop of drqv2's ``train.py``:
dm_control cartpole_balance with drqv2's wrappers (action repeat 2, 84x84 pixels from camera 0, frame
stack 3), a plain numpy replay with drqv2's n-step (3) sampling, act then update (every 2 steps) then env
step. Both take ``--seed-steps`` uniformly random agent steps, then learn for ``--learn-steps``; frames/s
is over the learning phase (the engine's from its train.csv times), evaluation off on both sides.

Each side runs in its own process (the engine's tunes its allocator as every run does, ``ML.allocator``;
the bare one is a plain PyTorch process), alternating which goes first. With ``--accelerate`` the engine
runs with ``accelerate=true`` (bf16 autocast of the encoder on CPUs with native bf16, channels_last); the
bare side stays fp32. Prints both rates and the ratio engine / bare.

``tests/test_drqv2.py`` checks one update of the engine against ``Reference`` (losses and gradients).
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

FRAMES_PER_UPDATE = 4  # update_every 2 agent steps x action repeat 2
SETTINGS = ("feature_dim", "hidden_dim", "n_step", "gamma", "update_every", "critic_tau", "stddev_clip",
            "learn_start", "num_expl_steps")  # loop mode: the same on both sides, or no comparison
ENV_SETTINGS = ("action_repeat", "frame_stack", "size")


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
    """drqv2's ``act`` and ``update`` on copies of an engine agent's networks (the same weights and layout)."""

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
        self.num_expl_steps = agent.num_expl_steps
        self.critic_grads: list[torch.Tensor] = []  # snapshots for the test, taken right after each backward
        self.actor_grads: list[torch.Tensor] = []

    def actor_forward(self, h: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.actor.policy(self.actor.trunk(h)))

    def critic_forward(self, critic: Any, h: torch.Tensor, action: torch.Tensor):
        ha = torch.cat([critic.trunk(h), action], dim=-1)
        return critic.q1(ha), critic.q2(ha)

    def act(self, obs: np.ndarray, step: int) -> np.ndarray:
        """drqv2's ``act`` (training): encoder and actor on one observation, noise, uniform while exploring."""
        with torch.no_grad():
            h = self.encoder(torch.as_tensor(obs).unsqueeze(0))
            action = sample_noise(self.actor_forward(h), self.schedule(step), None)
            if step < self.num_expl_steps:
                action.uniform_(-1.0, 1.0)
            return action.cpu().numpy()[0]

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


def build(batch_size: int, accelerate: bool = False, seed: int = 0, **agent_args: Any):
    """An engine DrQ-v2 agent for 3x84x84 RGB stacks (9 channels), 1-D action, and a fixed uint8 batch."""
    from ML.agents.drqv2 import DrQV2Agent
    from ML.checkpoints import agent_settings
    from ML.envs.base import TaskSpec
    from ML.hyperparams import resolve_config

    torch.manual_seed(seed)
    config = resolve_config((), {"task": "drqv2", "batch_size": batch_size, "device": "cpu",
                                 "accelerate": accelerate, "agent": agent_args})
    spec = TaskSpec(suite="DMC", task="cartpole_balance", obs_shape=(9, 84, 84), discrete=False,
                    action_shape=(1,), action_low=-1.0, action_high=1.0)
    agent = DrQV2Agent(spec, agent_settings(config), **config.agent)
    g = torch.Generator().manual_seed(seed)
    batch = {"obs": torch.randint(0, 256, (batch_size, 9, 84, 84), dtype=torch.uint8, generator=g),
             "next_obs": torch.randint(0, 256, (batch_size, 9, 84, 84), dtype=torch.uint8, generator=g),
             "action": torch.rand(batch_size, 1, generator=g) * 2 - 1,
             "reward": torch.rand(batch_size, generator=g),
             "discount": torch.full((batch_size,), 0.99 ** 3)}
    return agent, batch, float(config.lr)


def rate(fn: Any, updates: int) -> dict[str, float]:
    """frames/s of wall and of CPU time over ``updates`` calls after a warm-up call."""
    fn()  # warm-up (first-call allocations, optimiser state)
    began, cpu = time.perf_counter(), time.process_time()
    for _ in range(updates):
        fn()
    frames = updates * FRAMES_PER_UPDATE
    return {"wall": frames / (time.perf_counter() - began), "cpu": frames / (time.process_time() - cpu)}


# -- the loop -----------------------------------------------------------------------------------------


class BareEnv:
    """drqv2's ``dmc.make``: ActionRepeatWrapper(2) → pixels.Wrapper (84x84, camera 0) → FrameStackWrapper(3)."""

    def __init__(self, seed: int, action_repeat: int = 2, frame_stack: int = 3, size: int = 84):
        from dm_control import suite

        self.env = suite.load("cartpole", "balance", task_kwargs={"random": seed})
        self.repeat, self.stack, self.size = action_repeat, frame_stack, size
        self.frames: list[np.ndarray] = []

    def _pixels(self) -> np.ndarray:
        return self.env.physics.render(height=self.size, width=self.size, camera_id=0).transpose(2, 0, 1).copy()

    def reset(self) -> np.ndarray:
        self.env.reset()
        self.frames = [self._pixels()] * self.stack
        return np.concatenate(self.frames)

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, float, bool]:
        reward, discount = 0.0, 1.0
        for _ in range(self.repeat):
            time_step = self.env.step(action)
            reward += (time_step.reward or 0.0) * discount
            discount *= time_step.discount
            if time_step.last():
                break
        self.frames = [*self.frames[1:], self._pixels()]
        return np.concatenate(self.frames), reward, discount, time_step.last()


class BareReplay:
    """A numpy replay with drqv2's ``ReplayBuffer._sample``: a uniform transition with ``n_step`` steps ahead
    in its episode, reward ``sum_i d_i r_{t+i}`` and discount ``prod_i gamma * discount_{t+i}``."""

    def __init__(self, capacity: int, obs_shape: tuple[int, ...], n_step: int, gamma: float, seed: int):
        self.frames = np.zeros((capacity, *obs_shape), np.uint8)
        self.source = np.zeros(capacity, np.int64)  # transition → the frame it leaves from
        self.episode = np.zeros(capacity, np.int64)
        self.action = np.zeros((capacity, 1), np.float32)
        self.reward = np.zeros(capacity, np.float32)
        self.discount = np.zeros(capacity, np.float32)
        self.n_step, self.gamma, self.rng = n_step, gamma, np.random.default_rng(seed)
        self.frame, self.count, self.episodes = -1, 0, 0

    def start(self, obs: np.ndarray) -> None:
        self.frame += 1
        self.frames[self.frame] = obs
        self.episodes += 1

    def add(self, action: np.ndarray, reward: float, discount: float, next_obs: np.ndarray) -> None:
        t = self.count
        self.source[t], self.episode[t] = self.frame, self.episodes
        self.action[t], self.reward[t], self.discount[t] = action, reward, discount
        self.frame += 1
        self.frames[self.frame] = next_obs
        self.count += 1

    def sample(self, batch_size: int) -> dict[str, torch.Tensor]:
        n = self.n_step
        first = np.arange(self.count - n + 1)
        index = self.rng.choice(np.flatnonzero(self.episode[first] == self.episode[first + n - 1]), batch_size)
        steps = index[:, None] + np.arange(n)
        discounts = np.cumprod(self.discount[steps] * self.gamma, axis=1)                  # after each step
        weights = np.concatenate([np.ones((batch_size, 1), np.float32), discounts[:, :-1]], axis=1)
        return {"obs": torch.as_tensor(self.frames[self.source[index]]),
                "action": torch.as_tensor(self.action[index]),
                "reward": torch.as_tensor((weights * self.reward[steps]).sum(axis=1)),
                "discount": torch.as_tensor(discounts[:, -1]),
                "next_obs": torch.as_tensor(self.frames[self.source[index + n - 1] + 1])}


def bare_loop(batch_size: int, seed_steps: int, learn_steps: int, seed: int = 0) -> dict[str, float]:
    """drqv2's ``train.py`` loop (act, update every 2 steps once seeded, env step, store), frames/s of the
    learning phase."""
    engine_agent, _, lr = build(batch_size, seed=seed, learn_start=seed_steps, num_expl_steps=seed_steps)
    agent = Reference(engine_agent, lr)
    total = seed_steps + learn_steps
    env = BareEnv(seed)
    replay = BareReplay(2 * total + 2, (9, 84, 84), engine_agent.n_step, engine_agent.gamma, seed)
    obs = env.reset()
    replay.start(obs)
    began = cpu = 0.0
    for step in range(total):
        if step == seed_steps:
            began, cpu = time.perf_counter(), time.process_time()
        action = agent.act(obs, step)
        if step >= seed_steps and step % engine_agent.update_every == 0:
            agent.update(replay.sample(batch_size), step)
        obs, reward, discount, last = env.step(action)
        replay.add(action, reward, discount, obs)
        if last:
            obs = env.reset()
            replay.start(obs)
    frames = learn_steps * env.repeat
    settings = {**{k: getattr(engine_agent, k) for k in SETTINGS}, "action_repeat": env.repeat,
                "frame_stack": env.stack, "size": env.size, "batch_size": batch_size, "lr": lr}
    return {"wall": frames / (time.perf_counter() - began), "cpu": frames / (time.process_time() - cpu),
            "settings": settings}


def engine_loop(batch_size: int, seed_steps: int, learn_steps: int, threads: int, accelerate: bool,
                seed: int = 0) -> dict[str, float]:
    """``ML.launch(task=drqv2)`` on DMC cartpole_balance from pixels, frames/s of the learning phase from
    its train.csv (a row at the end of seeding and at the end)."""
    import csv
    import json
    import math
    import sys
    import tempfile
    from pathlib import Path

    import ML

    del sys.argv[1:]  # ML.launch reads the command line too: this benchmark's own flags are not ML's
    with tempfile.TemporaryDirectory() as results:
        run = Path(results) / "Exp" / "runs" / "drqv2" / "DMC" / "cartpole_balance" / str(seed)
        ML.launch("replay.save=false", "env.task=cartpole_balance", f"agent.learn_start={seed_steps}",
                  f"agent.num_expl_steps={seed_steps}", task="drqv2", batch_size=batch_size, seed=seed,
                  train_steps=seed_steps + learn_steps, evaluate_per_steps=0, evaluate_episodes=0,
                  log_per_steps=math.gcd(seed_steps, learn_steps), save=False, threads=threads, device="cpu",
                  accelerate=accelerate, progress=False, results=results)
        config = json.loads((run / "run.json").read_text())["config"]
        rows = {int(r["step"]): r for r in csv.DictReader((run / "train.csv").open())}
    start, end = rows[seed_steps], rows[seed_steps + learn_steps]
    settings = {**{k: config["agent"][k] for k in SETTINGS}, **{k: config["env"][k] for k in ENV_SETTINGS},
                "batch_size": config["batch_size"], "lr": config["lr"]}
    return {"wall": (int(end["frame"]) - int(start["frame"])) / (float(end["time"]) - float(start["time"])),
            "settings": settings}


def update_side(side: str, batch_size: int, updates: int, accelerate: bool) -> dict[str, float]:
    """One side of the update comparison: the engine's ``learn`` (allocator tuned, as every run) or drqv2's."""
    step = 10_000
    if side == "engine":
        from ML.allocator import keep_freed_memory

        keep_freed_memory()
        agent, batch, _ = build(batch_size, accelerate)
        return rate(lambda: agent.learn(batch, step), updates)
    engine_agent, batch, lr = build(batch_size)
    reference = Reference(engine_agent, lr)
    return rate(lambda: reference.update(batch, step), updates)


def run_side(args: argparse.Namespace, side: str) -> dict[str, float]:
    """One side in its own process (its stdout's last line: the rates as JSON)."""
    import json
    import subprocess
    import sys

    command = [sys.executable, __file__, "--side", side, "--batch", str(args.batch), "--updates", str(args.updates),
               "--threads", str(args.threads), "--seed-steps", str(args.seed_steps),
               "--learn-steps", str(args.learn_steps), *(["--loop"] if args.loop else []),
               *(["--accelerate"] if args.accelerate else [])]
    out = subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loop", action="store_true", help="the whole training loop (else the update alone)")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--updates", type=int, default=5, help="update mode: timed updates per repeat")
    parser.add_argument("--seed-steps", type=int, default=200, help="loop mode: random agent steps first")
    parser.add_argument("--learn-steps", type=int, default=200, help="loop mode: timed agent steps after")
    parser.add_argument("--repeats", type=int, default=None, help="default 3 (update), 1 (loop)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--accelerate", action="store_true", help="engine with accelerate=true (bf16 encoder)")
    parser.add_argument("--side", choices=("engine", "bare"), help=argparse.SUPPRESS)  # one side, in-process
    args = parser.parse_args()
    if args.side:
        import json

        torch.set_num_threads(args.threads)
        if not args.loop:
            result = update_side(args.side, args.batch, args.updates, args.accelerate)
        elif args.side == "engine":
            result = engine_loop(args.batch, args.seed_steps, args.learn_steps, args.threads, args.accelerate)
        else:
            import ML.envs.dmc  # noqa: F401  (MUJOCO_GL before dm_control, as the engine picks it)

            result = bare_loop(args.batch, args.seed_steps, args.learn_steps)
        print(json.dumps(result))
        return
    repeats = args.repeats or (1 if args.loop else 3)
    rates: dict[str, list[dict[str, float]]] = {"engine": [], "bare": []}
    for r in range(repeats):  # alternating which goes first
        for side in ("engine", "bare") if r % 2 == 0 else ("bare", "engine"):
            rates[side].append(run_side(args, side))
        e, b = rates["engine"][-1], rates["bare"][-1]
        if e.get("settings") != b.get("settings"):
            raise SystemExit(f"the sides differ: engine {e.get('settings')} vs bare {b.get('settings')}")
        print(f"repeat {r}: engine {e['wall']:7.2f} frames/s   bare {b['wall']:7.2f} frames/s   "
              f"ratio {e['wall'] / b['wall']:.3f} wall", flush=True)
    mode = "accelerate=true" if args.accelerate else "fp32"
    what = (f"DrQ-v2 loop, DMC cartpole_balance from pixels, {args.seed_steps} seed + {args.learn_steps} "
            f"learning agent steps (frames/s of learning)" if args.loop else "DrQ-v2 update, 9x84x84 pixels")
    print(f"{what}, batch {args.batch}, {args.threads} thread(s), engine {mode}, median of {repeats}:")
    names = ("engine (ML.launch task=drqv2)", "bare (drqv2's train.py loop)") if args.loop else \
        ("engine (DrQV2Agent.learn)", "bare (drqv2's update)")
    for key in ("wall", "cpu"):
        if key not in rates["engine"][0]:
            continue
        e = statistics.median(x[key] for x in rates["engine"])
        b = statistics.median(x[key] for x in rates["bare"])
        ratio = statistics.median(x[key] / y[key] for x, y in zip(rates["engine"], rates["bare"], strict=True))
        print(f"  frames/{'s' if key == 'wall' else 'CPU-s'}: {names[0]} {e:7.2f}   {names[1]} {b:7.2f}   "
              f"ratio engine / bare {ratio:6.3f}   (target >= 1.2)")


if __name__ == "__main__":
    main()
