"""atari100k (DrQ(ε)) on this CPU: agent steps/s with dopamine's network against the previous one, and the
projected time of one full 100k-step game run.

    .venv/bin/python benchmarks/atari100k.py [--steps 150] [--repeats 3] [--threads 1]

One training step is what the RL driver does per agent step once learning has started: ``agent.act`` on the
frame stack, ``env.step`` (Pong), ``replay.add``, ``agent.update`` (one update at batch 32: augmentation of obs
and next obs, double-DQN target with 10-step returns, Adam). Both sides run the same loop on the same replay
(2,000 real Pong steps first), alternating, ``--repeats`` times; the median rate is printed.

- new: the recipe as it is (``FullRainbowNetwork``: SAME-padded torso, 7,744 features, one shared 512 layer,
  dueling heads, 4.05M parameters for Pong; ``DrQAtariAug``: shifts and intensity noise);
- previous: the recipe before it (``NatureCNN`` with valid padding, 3,136 features, and two separate 512-unit
  dueling streams, 3.29M parameters; ``RandomShiftsAug``).

Rates are given per wall second (this machine's load included) and per CPU second of the process (what a
free core would do at ``--threads 1``). The projection, from the CPU rates: 1,600 collection steps (no
updates before min_replay_history) at the collection rate, 98,400 training steps at the training rate, and
the final evaluation, 100 episodes on 100 envs, at the rate of one batched step of 100 stacks (its length is
the game's: the longest of the 100 episodes, printed for 2,000 and 27,000 rounds, Pong's few thousand and
the 108k-frame cap).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from ML.checkpoints import agent_settings
from ML.envs.atari import Atari
from ML.hyperparams import instantiate, resolve_config
from ML.replay import Replay

PREVIOUS = {"Eyes": "NatureCNN", "eyes": {}, "Model": "MLP", "model": {"hidden_dim": 512, "depth": 1},
            "Aug": "RandomShiftsAug", "aug": {"pad": 4}, "agent.dueling": True}


def build(overrides: dict, env: Atari):
    """The recipe atari100k with ``overrides`` (another ``task`` too) and its agent for ``env``."""
    config = resolve_config((), {"task": "atari100k", "device": "cpu", **overrides})
    agent = instantiate(config.Agent, {**config.agent,
                                       "spec": env.task_spec, "settings": agent_settings(config)}, label="Agent")
    return config, agent


def loop(agent, env: Atari, replay: Replay, obs: np.ndarray, steps: int, learn: bool,
          step0: int) -> tuple[tuple[float, float], np.ndarray]:
    """(wall steps/s, steps per CPU second of this process), and the last observation."""
    began, cpu = time.perf_counter(), time.process_time()
    for step in range(step0, step0 + steps):
        action = agent.act(obs, step)
        obs, reward, terminated, truncated, _ = env.step(action)
        replay.add(action, reward, obs, terminated, truncated)
        if terminated or truncated:
            obs, _ = env.reset()
            replay.start(obs)
        if learn:
            agent.update(replay, step)
    return (steps / (time.perf_counter() - began), steps / (time.process_time() - cpu)), obs


def _eval_rate(agent, rounds: int = 20) -> float:
    """Batched evaluation rounds per CPU second: one ``act_batch`` of 100 stacks (the env steps are the
    collection's)."""
    stacks = np.random.default_rng(0).integers(0, 256, (100, 4, 84, 84), dtype=np.uint8)
    agent.eval()
    agent.act_batch(stacks, 0, eval_mode=True)
    cpu = time.process_time()
    for _ in range(rounds):
        agent.act_batch(stacks, 0, eval_mode=True)
    agent.train()
    return rounds / (time.process_time() - cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=150, help="training steps timed per repeat and side")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    sides = {}
    for name, overrides in (("new", {}), ("previous", PREVIOUS)):
        env = Atari("pong", protocol="atari100k", seed=0)
        config, agent = build(overrides, env)
        info = env.task_spec.info
        replay = Replay(None, 100_000, env.task_spec.obs_shape, np.uint8, (), np.int64, frame_stack=4,
                        zero_pad=info["starts"] == "dopamine")
        obs, _ = env.reset(seed=0)
        replay.start(obs)
        collect, obs = loop(agent, env, replay, obs, 2000, learn=False, step0=0)
        params = sum(p.numel() for p in agent.q.parameters())
        sides[name] = {"env": env, "agent": agent, "replay": replay, "obs": obs, "collect": collect,
                       "train": [], "params": params, "step": 2000}
    for _ in range(args.repeats):
        for side in sides.values():
            rate, side["obs"] = loop(side["agent"], side["env"], side["replay"], side["obs"], args.steps,
                                      learn=True, step0=side["step"])
            side["step"] += args.steps
            side["train"].append(rate)
    for name, side in sides.items():
        wall = statistics.median(r[0] for r in side["train"])
        cpu = statistics.median(r[1] for r in side["train"])
        evals = _eval_rate(side["agent"])
        hours = (1600 / side["collect"][1] + 98_400 / cpu) / 3600
        print(f"{name:>8}: {side['params']:,} parameters; training {wall:.2f} steps/s wall, {cpu:.2f} per CPU "
              f"second (repeats {', '.join(f'{r[1]:.2f}' for r in side['train'])}); collection "
              f"{side['collect'][1]:.0f} steps per CPU second; a 100k-step run on a free core: {hours:.1f} h of "
              f"training + the final evaluation, {2000 / evals / 60:.1f} min (2k rounds) to "
              f"{27_000 / evals / 60:.0f} min (27k rounds) at {evals:.1f} batched rounds per CPU second "
              f"({args.threads} thread{'s' if args.threads > 1 else ''})")
    for i, kind in enumerate(("wall", "CPU")):
        new, old = (statistics.median(r[i] for r in sides[k]["train"]) for k in ("new", "previous"))
        print(f"training steps/s ({kind}) new / previous: {new / old:.2f}")


if __name__ == "__main__":
    main()
