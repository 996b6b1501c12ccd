"""Replay costs: sampling stacked pixels against a bare numpy gather, and writing as a share of a train step.

    .venv/bin/python benchmarks/replay.py [--frames 8000] [--batches 100] [--threads 1]

(a) Sampling: ``Replay.sample(256, n_step=3)`` from a replay of 84x84 gray frames stored once each
    (``frame_stack=4``: every stack is rebuilt by a gather, and the n-step reward, discount and next stack
    are computed at sample time) against a bare gather of 256 rows from RAM arrays that hold the stacks and
    the n-step targets precomputed (``obs[i], next_obs[i], action[i], reward[i], discount[i]``, 2x4 frames
    per transition: 8x the replay's memory). Prints batches/s of both and the ratio replay / bare.
(b) Writing: the time of ``Replay.add`` per step (frame stacks of Atari Pong, replay.h5 written in a temporary
    directory, its flushes amortized) as a share of one pixel-DQN training step (``task=atari100k``:
    ``agent.act`` + ``env.step`` + ``replay.add`` + ``agent.update`` at batch 32; NatureCNN, random shifts)
    on this machine's CPU (target < 5%). A GPU makes the update faster, so the share there is larger.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from ML.checkpoints import agent_settings
from ML.envs.atari import Atari
from ML.hyperparams import instantiate, resolve_config
from ML.replay import Replay


def _frames(count: int, seed: int = 0) -> list[tuple[np.ndarray, float, bool]]:
    """``count`` real Pong steps (random actions): (stacked obs, reward, episode ended)."""
    env = Atari("pong", seed=seed)
    rng = np.random.default_rng(seed)
    obs, _ = env.reset(seed=seed)
    out = [(obs, 0.0, False)]
    for _ in range(count - 1):
        obs, reward, terminated, truncated, _ = env.step(int(rng.integers(env.action_space.n)))
        out.append((obs, reward, terminated or truncated))
        if terminated or truncated:
            obs, _ = env.reset()
            out.append((obs, 0.0, False))
    return out[:count]


def _fill(replay: Replay, frames: list, rng: np.random.Generator) -> None:
    replay.start(frames[0][0])
    for i in range(1, len(frames)):
        obs, reward, ended = frames[i]
        if i % 1000 == 0 or ended:  # also cut episodes every 1000 steps
            replay.add(int(rng.integers(6)), reward, obs, ended, not ended)
            replay.start(frames[i][0])
        else:
            replay.add(int(rng.integers(6)), reward, obs, False, False)


def sampling(frames: list, batches: int, seed: int) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    replay = Replay(None, len(frames) + 10, (4, 84, 84), np.uint8, (), np.int64, frame_stack=4, seed=seed)
    _fill(replay, frames, rng)
    n = len(frames) - 3
    stacks = np.stack([f[0] for f in frames])
    bare = {"obs": stacks[:n], "next_obs": stacks[3:3 + n], "action": rng.integers(6, size=n),
            "reward": rng.random(n, np.float32), "discount": rng.random(n, np.float32)}
    del stacks

    def bare_sample() -> dict[str, torch.Tensor]:
        i = rng.integers(0, n, 256)
        return {k: torch.from_numpy(v[i]) for k, v in bare.items()}

    rates = {}
    for name, fn in (("replay", lambda: replay.sample(256, 3, 0.99)), ("bare", bare_sample)):
        fn()
        began = time.perf_counter()
        for _ in range(batches):
            fn()
        rates[name] = batches / (time.perf_counter() - began)
    assert replay.sample(256, 3)["obs"].shape == (256, 4, 84, 84)
    return rates["replay"], rates["bare"]


def write_cost(frames: list, seed: int) -> float:
    """Seconds per ``Replay.add`` (+ ``start`` at episode ends), replay.h5 flushes included."""
    rng = np.random.default_rng(seed)
    with tempfile.TemporaryDirectory() as tmp:
        replay = Replay(Path(tmp) / "replay.h5", 100_000, (4, 84, 84), np.uint8, (), np.int64, frame_stack=4)
        replay.start(frames[0][0])
        replay.add(0, 0.0, frames[1][0], False, False)  # touch the first arrays
        began = time.perf_counter()
        _fill(replay, frames, rng)
        replay.flush()
        elapsed = time.perf_counter() - began
        replay.close(keep=False)
    return elapsed / len(frames)


def train_step(steps: int, seed: int) -> float:
    """Seconds per pixel-DQN training step: act + env.step + replay.add + update at batch 32."""
    config = resolve_config((), {"task": "atari100k", "device": "cpu", "batch_size": 32, "seed": seed})
    env = Atari("pong", seed=seed)
    spec = env.task_spec
    agent = instantiate(config.Agent, {**config.agent, "learn_start": 0,
                                       "spec": spec, "settings": agent_settings(config)},
                        label="Agent")
    replay = Replay(None, 10_000, spec.obs_shape, np.uint8, (), np.int64, frame_stack=4, seed=seed)
    obs, _ = env.reset(seed=seed)
    replay.start(obs)

    def one(step: int) -> None:
        nonlocal obs
        action = agent.act(obs, step)
        obs, reward, terminated, truncated, _ = env.step(action)
        replay.add(action, reward, obs, terminated, truncated)
        agent.update(replay, step)
        if terminated or truncated:
            obs, _ = env.reset()
            replay.start(obs)

    for step in range(64):  # warm up: a replay to sample from, first updates
        one(step)
    began = time.perf_counter()
    for step in range(64, 64 + steps):
        one(step)
    return (time.perf_counter() - began) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=8000)
    parser.add_argument("--batches", type=int, default=100)
    parser.add_argument("--train-steps", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    frames = _frames(args.frames)
    ours, bare = [], []
    for r in range(args.repeats):
        a, b = sampling(frames, args.batches, r)
        ours.append(a)
        bare.append(b)
        print(f"repeat {r}: replay {a:7.1f} batches/s   bare {b:7.1f} batches/s   ratio {a / b:.3f}", flush=True)
    ratio = statistics.median(x / y for x, y in zip(ours, bare, strict=True))
    print(f"(a) sample 256 stacked 84x84x4 observations with 3-step targets ({args.frames} frames, median of "
          f"{args.repeats}):")
    print(f"  replay (frames once, stacks + n-step at sample time): {statistics.median(ours):7.1f} batches/s "
          f"({1e3 / statistics.median(ours):.2f} ms)")
    print(f"  bare gather of pre-stacked, precomputed arrays       : {statistics.median(bare):7.1f} batches/s "
          f"({1e3 / statistics.median(bare):.2f} ms)")
    print(f"  ratio replay / bare                                  : {ratio:7.3f}")
    add = statistics.median(write_cost(frames, r) for r in range(args.repeats))
    step = train_step(args.train_steps, 0)
    print(f"(b) replay write cost in a pixel-DQN step (task=atari100k, batch 32, {args.threads} CPU thread(s)):")
    print(f"  Replay.add per step (replay.h5 flushes amortized): {add * 1e6:9.1f} us")
    print(f"  training step (act + env.step + add + update)    : {step * 1e3:9.1f} ms")
    print(f"  share of the step                                : {100 * add / step:9.3f} %   (target < 5%)")
    print(f"  (a GPU update would have to take under {add / 0.05 * 1e3:.2f} ms per step for the share to reach 5%)")


if __name__ == "__main__":
    main()
