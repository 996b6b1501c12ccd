"""Atari collection speed: the engine's ``Env=Atari`` wrapper + replay against raw ale-py doing the same work.

    .venv/bin/python benchmarks/atari.py [--game pong] [--steps 5000] [--repeats 3]

Engine: ``ML.envs.atari.Atari`` (gymnasium ALE v5 at frameskip 1 + AtariPreprocessing + the engine's
4-frame stack) stepped with uniformly random actions, every step added to a ``Replay`` that writes
replay.h5 (in a temporary directory) with frames stored once, as the RL driver does.
Raw: ``ale_py.ALEInterface`` with the same preprocessing written here: up to 30 no-ops at reset, frame
skip 4 with a max-pool over the last two frames, grayscale, 84x84 ``cv2.INTER_AREA`` resize, a 4-frame
stack, and the newest frame copied into a preallocated numpy array (a bare replay). Prints agent-steps/s of
both and the ratio engine / raw (target >= 0.9); episode resets count on both sides.

``--vector N``: the engine's ``env.num_envs=N`` collection (``ML.envs.atari_vector.AtariVector``, one
``Replay`` with replay.h5 per game through ``ML.replay_streams.Streams``, as the RL driver does) against the
engine's one env (target >= 1.5 with 4 envs) and against raw ale-py ``AtariVectorEnv`` with N games and the
same preprocessing, frames into a numpy store (target >= 0.9). Actions are uniformly random, or with
``--agent`` the ``dqn_atari`` recipe's DQN agent's (``act`` per observation for one env, one ``act_batch``
for N: what collection costs in training, batched inference's saving included), on all three sides.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from ML.checkpoints import agent_settings
from ML.envs.atari import Atari
from ML.envs.atari_vector import AtariVector
from ML.hyperparams import instantiate, resolve_config
from ML.replay import Replay
from ML.replay_streams import Streams


def random_policy(num_actions: int, seed: int) -> Callable[[np.ndarray], Any]:
    """Uniformly random actions, one per observation in the batch (or one for an unbatched observation)."""
    rng = np.random.default_rng(seed)
    return lambda obs: rng.integers(num_actions, size=len(obs)) if obs.ndim == 4 else int(rng.integers(num_actions))


def agent_policy(game: str, seed: int) -> Callable[[np.ndarray], Any]:
    """The ``dqn_atari`` recipe's DQN agent acting as in training (ε at its final 0.1): ``act`` for one
    observation, ``act_batch`` for the vector env's batch, as ``ML.drivers.interactive`` calls them."""
    config = resolve_config(argv=["task=dqn_atari", f"env.game={game}", "device=cpu", f"seed={seed}"])
    spec = Atari(game, seed=seed).task_spec
    agent = instantiate(config.Agent, {**config.agent, "spec": spec, "settings": agent_settings(config)}, label="Agent")
    step = int(config.agent.eps_decay_steps)
    return lambda obs: agent.act_batch(obs, step) if obs.ndim == 4 else agent.act(obs, step)


def engine(game: str, steps: int, seed: int, policy: Callable[[np.ndarray], Any] | None = None) -> float:
    env = Atari(game, seed=seed)
    spec = env.task_spec
    act = policy or random_policy(spec.num_actions, seed)
    with tempfile.TemporaryDirectory() as tmp:
        replay = Replay(Path(tmp) / "replay.h5", steps + 1000, spec.obs_shape, np.uint8, (), np.int64,
                        frame_stack=spec.info["frame_stack"], seed=seed)
        began = time.perf_counter()
        obs, _ = env.reset(seed=seed)
        replay.start(obs)
        for _ in range(steps):
            action = act(obs)
            obs, reward, terminated, truncated, _ = env.step(action)
            replay.add(action, reward, obs, terminated, truncated)
            if terminated or truncated:
                obs, _ = env.reset()
                replay.start(obs)
        replay.flush()
        elapsed = time.perf_counter() - began
        replay.close(keep=False)
    env.close()
    return steps / elapsed


class RawAtari:
    """ale-py with the preprocessing of AtariPreprocessing(noop_max=30, frame_skip=4, screen_size=84)."""

    def __init__(self, game: str, seed: int):
        from ale_py import ALEInterface, LoggerMode, roms
        ALEInterface.setLoggerMode(LoggerMode.Error)
        self.ale = ALEInterface()
        self.ale.setInt("random_seed", seed)
        self.ale.setFloat("repeat_action_probability", 0.0)
        self.ale.setInt("max_num_frames_per_episode", 108_000)
        self.ale.loadROM(roms.get_rom_path(game))
        self.actions = self.ale.getMinimalActionSet()
        self.rng = np.random.default_rng(seed)
        self.buffer = np.zeros((2, 210, 160), np.uint8)
        self.stack = np.zeros((4, 84, 84), np.uint8)

    def _frame(self) -> np.ndarray:
        return cv2.resize(self.buffer[0], (84, 84), interpolation=cv2.INTER_AREA)[None]

    def reset(self) -> np.ndarray:
        self.ale.reset_game()
        for _ in range(int(self.rng.integers(1, 31))):  # no-op starts
            self.ale.act(self.actions[0])
            if self.ale.game_over():
                self.ale.reset_game()
        self.ale.getScreenGrayscale(self.buffer[0])
        self.buffer[1].fill(0)
        self.stack = np.concatenate([self._frame()] * 4)
        return self.stack

    def step(self, action: int):
        reward, done = 0.0, False
        for t in range(4):
            reward += self.ale.act(self.actions[action])
            done = self.ale.game_over()
            if done:
                break
            if t == 2:
                self.ale.getScreenGrayscale(self.buffer[1])
            elif t == 3:
                self.ale.getScreenGrayscale(self.buffer[0])
        np.maximum(self.buffer[0], self.buffer[1], out=self.buffer[0])
        self.stack = np.concatenate([self.stack[1:], self._frame()])
        return self.stack, reward, done


def raw(game: str, steps: int, seed: int) -> float:
    env = RawAtari(game, seed)
    actions = np.random.default_rng(seed).integers(len(env.actions), size=steps)
    store = np.zeros((steps + 1000, 84, 84), np.uint8)
    began = time.perf_counter()
    obs = env.reset()
    store[0] = obs[-1]
    i = 1
    for action in actions:
        obs, reward, done = env.step(int(action))
        store[i] = obs[-1]
        i += 1
        if done:
            obs = env.reset()
            store[i] = obs[-1]
            i += 1
    return steps / (time.perf_counter() - began)


def vector(game: str, steps: int, seed: int, num_envs: int, policy: Callable[[np.ndarray], Any] | None = None) -> float:
    """Agent steps/s of ale-py's ``AtariVectorEnv`` (C++ threads) with the same preprocessing, all envs counted."""
    from ale_py.vector_env import AtariVectorEnv

    env = AtariVectorEnv(game, num_envs, noop_max=30, frameskip=4, maxpool=True, stack_num=4, img_height=84,
                         img_width=84, grayscale=True, reward_clipping=False, use_fire_reset=False,
                         repeat_action_probability=0.0, max_num_frames_per_episode=108_000,
                         num_threads=min(num_envs, os.cpu_count() or 1))
    act = policy or random_policy(int(env.single_action_space.n), seed)
    rounds = max(steps // num_envs, 1)
    store = np.zeros((rounds + 1, num_envs, 84, 84), np.uint8)
    began = time.perf_counter()
    obs, _ = env.reset(seed=seed)
    store[0] = obs[:, -1]
    for i in range(rounds):
        obs, reward, terminated, truncated, _ = env.step(np.asarray(act(obs), np.int64))
        store[i + 1] = obs[:, -1]
    elapsed = time.perf_counter() - began
    env.close()
    return rounds * num_envs / elapsed


def engine_vector(game: str, steps: int, seed: int, num_envs: int,
                  policy: Callable[[np.ndarray], Any] | None = None) -> float:
    """Agent steps/s of the engine's ``env.num_envs`` collection, all envs counted: what
    ``Interactive._step_vector`` does (receive the step in flight, act, send the next, then store the received
    one into the games' replays while the games step)."""
    single = Atari(game, seed=seed)
    spec = single.task_spec
    env = AtariVector(single, num_envs)
    act = policy or random_policy(spec.num_actions, seed)
    rounds = max(steps // num_envs, 1)
    with tempfile.TemporaryDirectory() as tmp:
        replay = Streams(num_envs, Path(tmp) / "replay.h5", rounds + 1000, spec.obs_shape, np.uint8, (), np.int64,
                         frame_stack=spec.info["frame_stack"], seed=seed)

        began = time.perf_counter()
        replay.start(env.reset(seed))
        env.send(act(env.obs))
        for _ in range(rounds - 1):
            got = env.recv()
            env.send(act(env.obs))
            replay.add_round(got)
        replay.add_round(env.recv())
        for stream in replay.streams:
            stream.flush()
        elapsed = time.perf_counter() - began
        replay.close(keep=False)
    env.close()
    return rounds * num_envs / elapsed


def main_vector(game: str, steps: int, repeats: int, num_envs: int, agent: bool) -> None:
    names = ("engine 1 env", f"engine {num_envs} envs", f"raw vector {num_envs} envs")
    rates: dict[str, list[float]] = {name: [] for name in names}
    if agent:
        torch.set_num_threads(1)  # the cores are the games' (C++ threads); one for the network's forward passes
    for r in range(repeats):
        rates[names[0]].append(engine(game, steps, r, agent_policy(game, r) if agent else None))
        rates[names[1]].append(engine_vector(game, steps, r, num_envs, agent_policy(game, r) if agent else None))
        rates[names[2]].append(vector(game, steps, r, num_envs, agent_policy(game, r) if agent else None))
        print("repeat", r, "  ".join(f"{k} {v[-1]:8.1f}" for k, v in rates.items()), flush=True)
    med = {k: statistics.median(v) for k, v in rates.items()}
    acting = "dqn_atari's DQN agent acting (eps 0.1, CPU, 1 torch thread)" if agent else "random actions"
    print(f"Atari {game}, {steps} agent steps, {acting}, median of {repeats} (agent steps/s, all envs counted):")
    for k, v in med.items():
        print(f"  {k:<22}: {v:8.1f}")
    print(f"  ratio engine {num_envs} envs / engine 1 env     : {med[names[1]] / med[names[0]]:.2f}   (target >= 1.5)")
    print(f"  ratio engine {num_envs} envs / raw vector {num_envs} envs: {med[names[1]] / med[names[2]]:.2f}   "
          "(target >= 0.9)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--game", default="pong")
    parser.add_argument("--steps", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--vector", type=int, default=0, metavar="N",
                        help="instead: the engine's env.num_envs=N against its one env and raw AtariVectorEnv")
    parser.add_argument("--agent", action="store_true",
                        help="with --vector: actions from dqn_atari's DQN agent (act / act_batch), not random")
    args = parser.parse_args()
    if args.vector:
        return main_vector(args.game, args.steps, args.repeats, args.vector, args.agent)
    engine_rates, raw_rates = [], []
    for r in range(args.repeats):  # alternate which goes first, so slow spells of a shared machine even out
        first, second = (engine, raw) if r % 2 == 0 else (raw, engine)
        a, b = first(args.game, args.steps, r), second(args.game, args.steps, r)
        e, w = (a, b) if first is engine else (b, a)
        engine_rates.append(e)
        raw_rates.append(w)
        print(f"repeat {r}: engine {e:8.1f} steps/s   raw {w:8.1f} steps/s   ratio {e / w:.3f}", flush=True)
    ratio = statistics.median(x / y for x, y in zip(engine_rates, raw_rates, strict=True))
    print(f"Atari {args.game}, {args.steps} random agent steps (4 frames each), median of {args.repeats}:")
    print(f"  engine (Env=Atari + Replay with replay.h5): {statistics.median(engine_rates):8.1f} agent steps/s")
    print(f"  raw ale-py (same preprocessing, numpy store): {statistics.median(raw_rates):8.1f} agent steps/s")
    print(f"  ratio engine / raw                          : {ratio:8.3f}   (target >= 0.9)")


if __name__ == "__main__":
    main()
