"""Engine overhead: DQN on CartPole through ``ML.launch`` against a bare loop doing the same math.

    .venv/bin/python benchmarks/overhead.py [--steps 10000] [--repeats 3] [--threads 1]

Both sides use the dqn recipe's settings (network, batch, learning rate, n-step, double Q, target copies,
epsilon schedule, update frequency) and a real gymnasium CartPole-v1. The bare loop keeps its n-step
transitions in preallocated numpy arrays and has no logging, replay file, checkpoint or config. The rate
is measured from the first learning step to the last (train.csv's ``time`` column for the engine), so
start-up costs (imports, building the env and network) count on neither side. Prints steps/s of both
and the ratio engine / bare (target ≥ 0.9).

``--startup``: seconds of a whole ``ML task=dqn train_steps=0`` process (imports, config, env, agent, one
evaluation, run directory) against ``python -c 'import torch'``, interleaved (target: within 0.5 s).
"""

from __future__ import annotations

import argparse
import copy
import csv
import statistics
import subprocess
import sys
import tempfile
import time
from collections import deque
from pathlib import Path

import gymnasium
import numpy as np
import torch
import torch.nn.functional as F
from timing import children_cpu
from torch import nn

import ML
from ML.hyperparams import resolve_config


def engine(steps: int, seed: int) -> float:
    """Steps/s of ``ML.launch(task='dqn')`` between its first learning step and its last step."""
    config = resolve_config((), {"task": "dqn"})
    start = int(config.agent["learn_start"])
    with tempfile.TemporaryDirectory() as tmp:
        argv, sys.argv = sys.argv, sys.argv[:1]  # ML.launch reads command-line overrides from sys.argv
        try:
            ML.launch(task="dqn", train_steps=steps, evaluate_per_steps=10 * steps, evaluate_episodes=0,
                      log_per_steps=start, save=False, progress=False, seed=seed, run_dir=tmp,
                      **{"replay.save": False})
        finally:
            sys.argv = argv
        rows = list(csv.DictReader((Path(tmp) / "train.csv").open()))
    first = next(r for r in rows if int(r["step"]) == start)
    last = rows[-1]
    return (int(last["step"]) - start) / (float(last["time"]) - float(first["time"]))


class NStep:
    """Bare n-step transitions: (obs, action, discounted reward sum, discount, obs n steps later)."""

    def __init__(self, capacity: int, obs_dim: int, n: int, gamma: float, seed: int):
        self.obs = np.zeros((capacity, obs_dim), np.float32)
        self.next_obs = np.zeros((capacity, obs_dim), np.float32)
        self.action = np.zeros(capacity, np.int64)
        self.reward = np.zeros(capacity, np.float32)
        self.discount = np.zeros(capacity, np.float32)
        self.capacity, self.size, self.head, self.n, self.gamma = capacity, 0, 0, n, gamma
        self.window: deque = deque()
        self.rng = np.random.default_rng(seed)

    def _emit(self, next_obs: np.ndarray, terminated: bool) -> None:
        obs, action = self.window[0][0], self.window[0][1]
        ret = sum(self.gamma**k * r for k, (_, _, r) in enumerate(self.window))
        i = self.head
        self.obs[i], self.action[i], self.reward[i] = obs, action, ret
        self.discount[i] = 0.0 if terminated else self.gamma ** len(self.window)
        self.next_obs[i] = next_obs
        self.head = (i + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)
        self.window.popleft()

    def add(self, obs, action, reward, next_obs, terminated, truncated) -> None:
        self.window.append((obs, action, reward))
        if len(self.window) == self.n:
            self._emit(next_obs, terminated)
        if terminated or truncated:
            while self.window:
                self._emit(next_obs, terminated)

    def sample(self, batch: int):
        i = self.rng.integers(0, self.size, batch)
        return (torch.from_numpy(self.obs[i]), torch.from_numpy(self.action[i]), torch.from_numpy(self.reward[i]),
                torch.from_numpy(self.discount[i]), torch.from_numpy(self.next_obs[i]))


def bare(steps: int, seed: int) -> float:
    """The same DQN written as one plain loop; steps/s from the first learning step to the last."""
    config = resolve_config((), {"task": "dqn"})
    a = config.agent
    hidden, depth = int(config.model["hidden_dim"]), int(config.model["depth"])
    torch.manual_seed(seed)
    env = gymnasium.make("CartPole-v1")
    n_obs, n_act = env.observation_space.shape[0], int(env.action_space.n)
    layers: list[nn.Module] = [nn.Flatten(1)]
    width = n_obs
    for _ in range(depth):
        layers += [nn.Linear(width, hidden), nn.ReLU()]
        width = hidden
    q = nn.Sequential(*layers, nn.Linear(width, n_act))
    target = copy.deepcopy(q).requires_grad_(False)
    optim = torch.optim.Adam(q.parameters(), lr=float(config.lr), **{"fused": True, **(config.optim or {})})
    replay = NStep(int(config.replay["capacity"]), n_obs, int(a["n_step"]), float(a["gamma"]), seed)
    rng = np.random.default_rng(seed)
    batch = int(config.batch_size)
    learn_start, decay = int(a["learn_start"]), int(a["eps_decay_steps"])
    eps0, eps1, every, clip = float(a["eps_start"]), float(a["eps_end"]), int(a["update_every"]), float(a["grad_clip"])
    target_update, updates = int(a["target_update"]), 0
    obs, _ = env.reset(seed=seed)
    obs = obs.astype(np.float32)
    began = time.perf_counter()
    for step in range(steps):
        if step == learn_start:
            began = time.perf_counter()
        eps = eps1 if step >= decay else eps0 + (eps1 - eps0) * step / decay
        if rng.random() < eps:
            action = int(rng.integers(n_act))
        else:
            with torch.no_grad():
                action = int(q(torch.from_numpy(obs).unsqueeze(0)).argmax(1).item())
        next_obs, reward, terminated, truncated, _ = env.step(action)
        next_obs = next_obs.astype(np.float32)
        replay.add(obs, action, float(reward), next_obs, terminated, truncated)
        obs = next_obs
        if terminated or truncated:
            obs, _ = env.reset()
            obs = obs.astype(np.float32)
        if step >= learn_start and step % every == 0 and replay.size >= batch:
            o, act, r, disc, o2 = replay.sample(batch)
            with torch.no_grad():
                best = q(o2).argmax(1, keepdim=True)
                y = r + disc * target(o2).gather(1, best).squeeze(1)
            pred = q(o).gather(1, act.view(-1, 1)).squeeze(1)
            loss = F.smooth_l1_loss(pred, y)
            optim.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(q.parameters(), clip)
            optim.step()
            updates += 1
            if updates % target_update == 0:
                target.load_state_dict(q.state_dict())
            _ = float(loss.detach()), float(pred.detach().mean())  # the engine logs these every update
    return (steps - learn_start) / (time.perf_counter() - began)


def startup(repeats: int) -> None:
    """Seconds of ``ML task=dqn train_steps=0`` against ``python -c 'import torch'``, interleaved."""
    commands = {"import torch": [sys.executable, "-c", "import torch"],
                "ML task=dqn train_steps=0": [sys.executable, "-m", "ML", "task=dqn", "train_steps=0",
                                              "progress=false", "save=false"]}
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in commands}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(repeats):
            for name, command in commands.items():
                began, used = time.perf_counter(), children_cpu()
                subprocess.run(command, check=True, cwd=tmp, stdout=subprocess.DEVNULL)
                times[name].append((time.perf_counter() - began, children_cpu() - used))
    for i, what in ((0, "wall"), (1, "CPU ")):
        torch_s, ml_s = (statistics.median(t[i] for t in runs) for runs in times.values())
        print(f"start-up ({what} s), median of {repeats}: python -c 'import torch' {torch_s:.2f}, "
              f"ML task=dqn train_steps=0 {ml_s:.2f}, difference {ml_s - torch_s:.2f} (target <= 0.5)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--startup", action="store_true", help="measure process start-up instead")
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.startup:
        return startup(max(args.repeats, 5))
    torch.set_num_threads(args.threads)
    engine_rates, bare_rates = [], []
    for r in range(args.repeats):  # alternate which goes first, so slow spells of a shared machine even out
        seed = args.seed + r
        if r % 2 == 0:
            engine_rates.append(engine(args.steps, seed))
            bare_rates.append(bare(args.steps, seed))
        else:
            bare_rates.append(bare(args.steps, seed))
            engine_rates.append(engine(args.steps, seed))
        print(f"repeat {r}: engine {engine_rates[-1]:8.1f} steps/s   bare {bare_rates[-1]:8.1f} steps/s   "
              f"ratio {engine_rates[-1] / bare_rates[-1]:.3f}", flush=True)
    e, b = statistics.median(engine_rates), statistics.median(bare_rates)
    ratio = statistics.median(x / y for x, y in zip(engine_rates, bare_rates, strict=True))
    print(f"DQN CartPole-v1, {args.steps} steps ({args.threads} thread(s)), median of {args.repeats}:")
    print(f"  engine (ML.launch task=dqn): {e:8.1f} steps/s")
    print(f"  bare loop (same math)      : {b:8.1f} steps/s")
    print(f"  ratio engine / bare        : {ratio:8.3f}   (median of the per-repeat ratios; target >= 0.9)")


if __name__ == "__main__":
    main()
