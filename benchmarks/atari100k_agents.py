"""DER and SPR on this CPU beside DrQ(ε): agent steps/s of each recipe's training loop and the projected
time of one full 100k-step game run.

    .venv/bin/python benchmarks/atari100k_agents.py [--steps 40] [--repeats 2] [--threads 1]
    .venv/bin/python benchmarks/atari100k_agents.py --sampling     (the replay's sampling alone)

One training step is what the RL driver does per agent step once learning has started: ``agent.act`` on the
frame stack, ``env.step`` (Pong), ``replay.add``, ``agent.update`` at batch 32: DrQ(ε) (recipe atari100k) one
double-DQN update; DER (recipe der) one C51 update on noisy nets with prioritized sampling and priority
updates; SPR (recipe spr) two C51 + self-prediction updates (5-step rollouts, 6 augmented stacks a
transition, target latents). All three run the same loop on one replay filled with 2,100 real Pong steps,
alternating, ``--repeats`` times; the median rate is printed with its ratio to DrQ(ε)'s.

``--sampling`` times ``Replay.sample`` alone at batch 32 with 10-step returns on the same Pong replay:
uniform (DrQ(ε)), prioritized (DER: sum-tree draws), prioritized, stratified, with 5-step sequences (SPR),
and prints each one's batches/s and its ratio to uniform.

The projection: the collection steps before learning (``learn_start``) at the measured collection rate, the
rest of the 100k at the measured training rate; the final evaluation (100 episodes on 100 envs) is the same
network forward for all three and is left out (benchmarks/atari100k.py measures it).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
from atari100k import build, loop

from ML.envs.atari import Atari
from ML.replay import Replay

RECIPES = {"DrQ(eps)": "atari100k", "DER": "der", "SPR": "spr"}


def _sampling(replay: Replay, repeats: int) -> None:
    kinds = {"uniform (DrQ(eps))": {}, "prioritized (DER)": {"prioritized": True},
             "prioritized, stratified, 5-step sequences (SPR)": {"prioritized": True, "stratified": True,
                                                                  "sequence": 5}}
    rates: dict[str, list[float]] = {kind: [] for kind in kinds}
    replay.prioritize()
    replay.update_priorities(replay._slots[: len(replay)], np.random.default_rng(0).random(len(replay)) + 0.1)
    for _ in range(repeats):
        for kind, extra in kinds.items():
            began = time.perf_counter()
            for _ in range(200):
                replay.sample(32, 10, 0.99, clip=1.0, **extra)
            rates[kind].append(200 / (time.perf_counter() - began))
    base = statistics.median(rates["uniform (DrQ(eps))"])
    for kind, values in rates.items():
        print(f"{kind:50} {statistics.median(values):8.1f} batches/s {statistics.median(values) / base:6.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40, help="training steps timed per repeat and agent")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--sampling", action="store_true", help="time the replay's sampling kinds only")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    env = Atari("pong", protocol="atari100k", seed=0)
    info = env.task_spec.info
    replay = Replay(None, 100_000, env.task_spec.obs_shape, np.uint8, (), np.int64,
                    frame_stack=info["frame_stack"], zero_pad=info.get("starts") == "dopamine")
    obs, _ = env.reset(seed=0)
    replay.start(obs)
    rng = np.random.default_rng(0)
    for _ in range(2_100):  # past every recipe's learn_start
        action = int(rng.integers(env.task_spec.num_actions))
        obs, reward, terminated, truncated, _ = env.step(action)
        replay.add(action, reward, obs, terminated, truncated)
        if terminated or truncated:
            obs, _ = env.reset()
            replay.start(obs)
    if args.sampling:
        _sampling(replay, max(args.repeats, 3))
        return
    built = {name: build({"task": task}, env) for name, task in RECIPES.items()}
    collect = {name: [] for name in RECIPES}
    train = {name: [] for name in RECIPES}
    step0 = 20_000  # training: past every ε schedule (DrQ(ε) acts at 0.01, DER and SPR at 0: network forwards)
    for _ in range(args.repeats):
        for name, (_, agent) in built.items():
            # collection: steps before learn_start (DrQ(ε), SPR: ε 1, random actions; DER: its noisy network)
            (rate, _), obs = loop(agent, env, replay, obs, max(args.steps // 2, 5), False, 0)
            collect[name].append(rate)
            agent.update(replay, step0)  # first update outside the timing (allocations, priorities set up)
            (rate, _), obs = loop(agent, env, replay, obs, args.steps, True, step0 + 1)
            train[name].append(rate)
            step0 += args.steps + 1
    base = statistics.median(train["DrQ(eps)"])
    print(f"{'recipe':10} {'collect/s':>10} {'train steps/s':>14} {'vs DrQ(eps)':>12} {'100k steps (h)':>15}")
    for name, (config, _) in built.items():
        c, t = statistics.median(collect[name]), statistics.median(train[name])
        learn_start = int(config.agent.learn_start)
        hours = (learn_start / c + (int(config.train_steps) - learn_start) / t) / 3600
        print(f"{name:10} {c:10.1f} {t:14.2f} {t / base:11.2f}x {hours:15.1f}")
    print(f"(threads={args.threads}, {args.steps} training steps x {args.repeats} repeats per recipe, batch 32, "
          "Pong)")


if __name__ == "__main__":
    main()
