"""Atari collection speed: the engine's ``Env=Atari`` wrapper + replay against raw ale-py doing the same work.

    .venv/bin/python benchmarks/atari.py [--game pong] [--steps 5000] [--repeats 3]

Engine: ``ML.envs.atari.Atari`` (gymnasium ALE v5 at frameskip 1 + AtariPreprocessing + the engine's
4-frame stack) stepped with uniformly random actions, every step added to a ``Replay`` that writes
replay.h5 (in a temporary directory) with frames stored once, as the RL driver does.
Raw: ``ale_py.ALEInterface`` with the same preprocessing written here: up to 30 no-ops at reset, frame
skip 4 with a max-pool over the last two frames, grayscale, 84x84 ``cv2.INTER_AREA`` resize, a 4-frame
stack, and the newest frame copied into a preallocated numpy array (a bare replay). Prints agent-steps/s of
both and the ratio engine / raw (target >= 0.9); episode resets count on both sides.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from ML.envs.atari import Atari
from ML.replay import Replay


def engine(game: str, steps: int, seed: int) -> float:
    env = Atari(game, seed=seed)
    spec = env.task_spec
    rng = np.random.default_rng(seed)
    actions = rng.integers(spec.num_actions, size=steps)
    with tempfile.TemporaryDirectory() as tmp:
        replay = Replay(Path(tmp) / "replay.h5", steps + 1000, spec.obs_shape, np.uint8, (), np.int64,
                        frame_stack=spec.info["frame_stack"], seed=seed)
        began = time.perf_counter()
        obs, _ = env.reset(seed=seed)
        replay.start(obs)
        for action in actions:
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--game", default="pong")
    parser.add_argument("--steps", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
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
