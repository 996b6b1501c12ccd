"""Replay: n-step returns at sample time, frames stored once, eviction, replay.h5 round trip and errors."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from ML.errors import UserError
from ML.replay import Replay


def _fill(replay: Replay) -> None:
    """Three episodes, observations [v, v]: one terminated, one truncated, one still running."""
    replay.start([0, 0])
    for t in range(1, 4):  # rewards 1, 2, 3; terminates on reaching obs 3
        replay.add(t, float(t), [t, t], t == 3, False)
    replay.start([10, 10])
    for t in range(1, 3):  # rewards 10, 20; truncated on reaching obs 12
        replay.add(t, 10.0 * t, [10 + t, 10 + t], False, t == 2)
    replay.start([20, 20])
    replay.add(0, 5.0, [21, 21], False, False)


def _by_obs(batch: dict[str, torch.Tensor]) -> dict[float, tuple]:
    out = {}
    for i in range(len(batch["obs"])):
        out[float(batch["obs"][i, 0])] = (int(batch["action"][i]), float(batch["reward"][i]),
                                          float(batch["discount"][i]), float(batch["next_obs"][i, 0]))
    return out


def test_n_step_returns_stop_at_terminal_and_truncation() -> None:
    replay = Replay(None, 100, (2,), np.float32, (), np.int64)
    _fill(replay)
    assert len(replay) == 6 and replay.frames == 9  # 3 + 2 + 1 transitions; 4 + 3 + 2 frames, each once
    got = _by_obs(replay.sample(256, n_step=3, gamma=0.5))
    assert got == {  # exact: every value is a binary fraction
        0.0: (1, 1 + 0.5 * 2 + 0.25 * 3, 0.0, 3.0),   # terminated within 3 steps: no bootstrap
        1.0: (2, 2 + 0.5 * 3, 0.0, 3.0),
        2.0: (3, 3.0, 0.0, 3.0),
        10.0: (1, 10 + 0.5 * 20, 0.25, 12.0),        # truncated: bootstrap from the last frame
        11.0: (2, 20.0, 0.5, 12.0),
        20.0: (0, 5.0, 0.5, 21.0),                   # running episode: as many steps as exist
    }
    one = _by_obs(replay.sample(256, n_step=1, gamma=0.9))
    assert one[0.0] == pytest.approx((1, 1.0, 0.9, 1.0)) and one[2.0] == pytest.approx((3, 3.0, 0.0, 3.0))
    batch = replay.sample(32, 3)
    assert batch["obs"].dtype == torch.float32 and batch["action"].dtype == torch.int64
    assert batch["reward"].shape == batch["discount"].shape == (32,)


def test_n_step_on_longer_episode_bootstraps_n_steps_ahead() -> None:
    replay = Replay(None, 1000, (1,), np.float32, (), np.int64)
    replay.start([0])
    for t in range(1, 101):
        replay.add(0, 1.0, [t], False, t == 100)
    batch = replay.sample(512, n_step=5, gamma=0.9)
    start, nxt = batch["obs"][:, 0], batch["next_obs"][:, 0]
    full = start <= 95
    assert torch.equal(nxt[full], start[full] + 5)
    assert torch.allclose(batch["reward"][full], torch.tensor(sum(0.9**k for k in range(5))))
    assert torch.allclose(batch["discount"][full], torch.tensor(0.9**5))
    assert torch.equal(nxt[~full], torch.full_like(nxt[~full], 100.0))


def test_eviction_keeps_the_newest_frames() -> None:
    replay = Replay(None, 10, (1,), np.float32, (), np.int64)
    replay.start([0])
    for t in range(1, 31):
        replay.add(0, 0.0, [t], False, False)
    assert replay.frames == 10 and len(replay) == 9  # the newest frame has no action yet
    batch = replay.sample(200, n_step=3)
    assert batch["obs"].min() >= 21 and batch["obs"].max() <= 29
    assert torch.equal(batch["next_obs"], torch.clamp(batch["obs"] + 3, max=30))


def test_replay_grows_lazily_up_to_capacity() -> None:
    replay = Replay(None, 1_000_000, (84, 84), np.uint8, (), np.int64)
    assert replay._obs.nbytes < 10_000_000  # not 7 GB up front
    replay.start(np.zeros((84, 84), np.uint8))
    for t in range(3000):
        replay.add(1, 1.0, np.full((84, 84), t % 255, np.uint8), False, False)
    assert replay.frames == 3001 and replay.sample(8)["obs"].dtype == torch.uint8


def test_hdf5_round_trip_gives_the_same_samples(tmp_path: Path) -> None:
    path = tmp_path / "replay.h5"
    replay = Replay(path, 100, (2,), np.float32, (), np.int64, seed=3)
    _fill(replay)
    expected = replay.sample(64, 3, 0.9)
    replay.close(keep=True)
    with h5py.File(path, "r") as f:
        assert f.attrs["format"] == "unifiedml-replay"
        assert f["obs"].shape == (9, 2)  # every frame once, the running episode included
        assert f["episodes"][:].tolist() == [[0, 4, 1], [4, 3, 2], [7, 2, 0]]
    again = Replay(path, 100, (2,), np.float32, (), np.int64, load=True, seed=3)
    assert len(again) == 6
    got = again.sample(64, 3, 0.9)
    for key in expected:
        assert torch.equal(expected[key], got[key]), key
    again.start([30, 30])  # loaded replays keep appending
    again.add(1, 1.0, [31, 31], True, False)
    again.close()
    with h5py.File(path, "r") as f:
        assert f["obs"].shape == (11, 2) and f["episodes"].shape == (4, 3)


def test_small_capacity_still_writes_every_episode(tmp_path: Path) -> None:
    path = tmp_path / "replay.h5"
    replay = Replay(path, 8, (1,), np.float32, (), np.int64)
    for episode in range(50):
        replay.start([episode * 100])
        for t in range(1, 4):
            replay.add(0, float(t), [episode * 100 + t], t == 3, False)
    replay.close()
    with h5py.File(path, "r") as f:
        obs = f["obs"][:, 0]
        assert len(obs) == 200 and f["episodes"].shape == (50, 3)
        assert obs.tolist() == [e * 100 + t for e in range(50) for t in range(4)]


def test_replay_is_readable_while_training(tmp_path: Path) -> None:
    path = tmp_path / "replay.h5"
    replay = Replay(path, 100_000, (4,), np.float32, (), np.int64)
    for _ in range(3):
        replay.start(np.zeros(4))
        for t in range(2000):
            replay.add(0, 1.0, np.full(4, t), t == 1999, False)
    with h5py.File(path, "r", swmr=True) as f:  # the writer still has it open
        assert f["obs"].shape[0] >= 4001 and f.attrs["format"] == "unifiedml-replay"
    replay.close(keep=False)
    assert not path.exists()


def test_corrupt_or_foreign_replay_is_one_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "replay.h5"
    path.write_bytes(b"not an hdf5 file at all")
    with pytest.raises(UserError, match=r"is not a UnifiedML replay .*replay.load=false"):
        Replay(path, 10, (2,), np.float32, (), np.int64, load=True)
    path.unlink()
    with h5py.File(path, "w") as f:
        f["data"] = np.arange(3)
    with pytest.raises(UserError, match="not a UnifiedML replay") as err:
        Replay(path, 10, (2,), np.float32, (), np.int64, load=True)
    assert "\n" not in str(err.value)
    path.unlink()
    Replay(path, 10, (2,), np.float32, (), np.int64).close()
    with pytest.raises(UserError, match=r"shape \[2\].*\[3\]"):
        Replay(path, 10, (3,), np.float32, (), np.int64, load=True)
    fresh = Replay(path, 10, (3,), np.float32, (), np.int64, load=False)  # load=false starts over
    fresh.close()


def test_sampling_after_evictions_covers_exactly_the_kept_transitions() -> None:
    rng = np.random.default_rng(0)
    replay = Replay(None, 25, (1,), np.float32, (), np.int64)
    frame, starts_transition = 0, {}
    for _ in range(40):
        replay.start([frame])
        length = int(rng.integers(1, 8))
        for t in range(length):
            starts_transition[frame] = True
            frame += 1
            replay.add(0, 1.0, [frame], t == length - 1, False)
        starts_transition[frame] = False  # an episode's last frame
        frame += 1
    kept = range(frame - 25, frame)
    expected = {f for f in kept if starts_transition[f]}
    assert len(replay) == len(expected)
    sampled = set(replay.sample(5000, n_step=2)["obs"][:, 0].int().tolist())
    assert sampled == expected


# -- stacked pixel observations: stored once per frame, rebuilt at sample time ----------------------------


def _in_order(replay: Replay, n_step: int = 1, **kw) -> dict[str, torch.Tensor]:
    """Every transition once, in insertion order (no evictions: ``_slots`` is insertion order)."""
    replay._indices = lambda batch_size: replay._slots[: len(replay)].copy()  # type: ignore[method-assign]
    return replay.sample(len(replay), n_step, **kw)


def _collect(env, replay: Replay, steps: int, seed: int = 0):
    """Random play; returns the env's (obs, next_obs) of every transition, in order."""
    rng = np.random.default_rng(seed)
    obs, _ = env.reset(seed=seed)
    replay.start(obs)
    pairs = []
    for _ in range(steps):
        action = int(rng.integers(env.action_space.n))
        next_obs, reward, terminated, truncated, _ = env.step(action)
        replay.add(action, reward, next_obs, terminated, truncated)
        pairs.append((obs, next_obs))
        obs = next_obs
        if terminated or truncated:
            obs, _ = env.reset()
            replay.start(obs)
    return pairs


def test_atari_stacks_are_rebuilt_exactly_as_the_env_stacked_them() -> None:
    from ML.envs.atari import Atari
    # life losses end training episodes (and the next reset continues the game); a frame cap truncates
    env = Atari("breakout", protocol="atari100k", max_episode_frames=1200)
    shape = env.task_spec.obs_shape
    replay = Replay(None, 10_000, shape, np.uint8, (), np.int64, frame_stack=env.task_spec.info["frame_stack"],
                    zero_pad=env.task_spec.info["starts"] == "dopamine")  # dopamine's stacks start at zeros
    assert replay._obs.shape[1:] == (1, 84, 84)  # one gray frame per slot, not four
    pairs = _collect(env, replay, 700)
    batch = _in_order(replay)
    assert batch["obs"].shape == (700, *shape) and batch["obs"].dtype == torch.uint8
    assert np.array_equal(batch["obs"].numpy(), np.stack([p[0] for p in pairs]))
    assert np.array_equal(batch["next_obs"].numpy(), np.stack([p[1] for p in pairs]))
    three = _in_order(replay, n_step=3)["next_obs"].numpy()  # k steps later, within the episode
    assert all(any(np.array_equal(three[i], pairs[j][1]) for j in range(i, min(i + 3, 700))) for i in range(700))


class _ColourStack:
    """DMC's pixel stacking (``envs/dmc.py``): 3 RGB channels per frame, the first frame repeated at reset."""

    def __init__(self, frame_stack: int = 3, size: int = 6, length: int = 7):
        self.frame_stack, self.size, self.length, self.t, self.k = frame_stack, size, length, 0, 0
        self.action_space = type("Space", (), {"n": 2})()

    def _frame(self) -> np.ndarray:
        self.k += 1
        return np.full((3, self.size, self.size), self.k % 251, np.uint8) + np.arange(3, dtype=np.uint8)[:, None, None]

    def reset(self, seed=None):
        self.t = 0
        self.frames = np.concatenate([self._frame()] * self.frame_stack)
        return self.frames, {}

    def step(self, action):
        self.t += 1
        self.frames = np.concatenate([self.frames[3:], self._frame()])
        return self.frames, 1.0, self.t == self.length, False, {}


def test_rgb_stacks_are_rebuilt_exactly() -> None:
    env = _ColourStack()
    replay = Replay(None, 1000, (9, 6, 6), np.uint8, (), np.int64, frame_stack=3)
    pairs = _collect(env, replay, 40)
    batch = _in_order(replay)
    assert np.array_equal(batch["obs"].numpy(), np.stack([p[0] for p in pairs]))
    assert np.array_equal(batch["next_obs"].numpy(), np.stack([p[1] for p in pairs]))


def test_stacks_after_evictions_hold_frames_of_one_episode_in_order() -> None:
    replay = Replay(None, 50, (4, 1), np.int64, (), np.int64, frame_stack=4)
    frame = 0
    for episode in range(30):  # frame value = episode * 1000 + t; stacks repeat t = 0 at the start
        replay.start(np.full((4, 1), episode * 1000))
        for t in range(1, 2 + episode % 6):
            replay.add(0, 1.0, np.full((4, 1), episode * 1000 + t), False, t == 1 + episode % 6)
            frame += 1
    batch = replay.sample(2000, n_step=2)
    for key in ("obs", "next_obs"):
        stacks = batch[key][:, :, 0].numpy()
        assert np.all(stacks // 1000 == stacks[:, -1:] // 1000)   # one episode per stack
        steps = np.diff(stacks % 1000, axis=1)
        assert np.all((steps == 0) | (steps == 1))                  # in order, the first frame repeated
        newest = stacks[:, -1] % 1000
        assert np.all(stacks[:, 0] % 1000 == np.maximum(newest - 3, stacks[:, 0] % 1000))


def test_stacked_replay_round_trips_and_refuses_another_stack(tmp_path: Path) -> None:
    path = tmp_path / "replay.h5"
    env = _ColourStack(length=5)
    replay = Replay(path, 1000, (9, 6, 6), np.uint8, (), np.int64, frame_stack=3, seed=1)
    _collect(env, replay, 23)
    expected = replay.sample(64, 3)
    replay.close()
    with h5py.File(path, "r") as f:
        assert f["obs"].shape == (23 + 5, 3, 6, 6) and f.attrs["frame_stack"] == 3
    again = Replay(path, 1000, (9, 6, 6), np.uint8, (), np.int64, frame_stack=3, seed=1, load=True)
    got = again.sample(64, 3)
    assert all(torch.equal(expected[k], got[k]) for k in expected)
    again.close()
    with pytest.raises(UserError, match="stacks of 3 frame.*stacks 1.*replay.load=false"):
        Replay(path, 1000, (9, 6, 6), np.uint8, (), np.int64, load=True)
    with pytest.raises(UserError, match="frame_stack=2 must"):
        Replay(None, 10, (9, 6, 6), np.uint8, (), np.int64, frame_stack=2)


def test_rewards_are_clipped_before_n_step_sums() -> None:
    replay = Replay(None, 100, (1,), np.float32, (), np.int64)
    replay.start([0])
    for t in range(1, 4):
        replay.add(0, [5.0, -3.0, 0.5][t - 1], [t], t == 3, False)
    got = {float(o): float(r) for o, r in zip(*(lambda b: (b["obs"][:, 0], b["reward"]))(
        replay.sample(200, 3, 0.5, clip=1.0)), strict=True)}
    assert got == {0.0: 1 - 0.5 + 0.25 * 0.5, 1.0: -1 + 0.5 * 0.5, 2.0: 0.5}


# -- resuming: state() at a checkpoint, load with it later ------------------------------------------------


def _episodes(replay: Replay, start: int, count: int, length: int = 5) -> None:
    for e in range(start, start + count):
        replay.start(np.full((4, 2), e * 100))
        for t in range(1, length + 1):
            replay.add(t % 3, float(t), np.full((4, 2), e * 100 + t), t == length, False)


def test_resume_from_state_drops_later_work_and_samples_the_same(tmp_path: Path) -> None:
    path = tmp_path / "replay.h5"
    make = {"capacity": 1000, "obs_shape": (4, 2), "obs_dtype": np.int64, "action_shape": (),
            "action_dtype": np.int64, "frame_stack": 2}
    replay = Replay(path, seed=5, **make)
    _episodes(replay, 0, 4)
    replay.sample(16, 3)  # the RNG has moved
    replay.start(np.full((4, 2), 400))  # an unfinished episode at checkpoint time
    replay.add(1, 1.0, np.full((4, 2), 401), False, False)
    state = replay.state()
    assert state["disk_frames"] == 24 and state["disk_episodes"] == 4 and "rng" in state
    with h5py.File(path, "r", swmr=True) as f:  # state() wrote every complete episode
        assert f["obs"].shape[0] == 24
    # the uninterrupted run goes on: finishes the episode, plays two more, samples
    replay.add(2, 2.0, np.full((4, 2), 402), True, False)
    _episodes(replay, 5, 2)
    expected = [replay.sample(32, 3, 0.9) for _ in range(3)]
    replay.start(np.full((4, 2), 700))  # killed mid-episode: close writes that partial episode too
    replay.add(0, 0.0, np.full((4, 2), 701), False, False)
    replay.close(keep=True)
    with h5py.File(path, "r") as f:
        assert f["obs"].shape[0] == 24 + 3 + 12 + 2 and f["episodes"].shape[0] == 8
    loaded = Replay(path, seed=0, load=True, state=state, **make)
    with h5py.File(path, "r", swmr=True) as f:  # cut back to the checkpoint
        assert f["obs"].shape[0] == 24 and f["episodes"].shape[0] == 4
    assert len(loaded) == 20 and loaded.frames == 24
    # the driver re-steps the unfinished episode, then the run goes on as before
    loaded.start(np.full((4, 2), 400))
    loaded.add(1, 1.0, np.full((4, 2), 401), False, False)
    loaded.add(2, 2.0, np.full((4, 2), 402), True, False)
    _episodes(loaded, 5, 2)
    for want in expected:
        got = loaded.sample(32, 3, 0.9)
        assert all(torch.equal(want[k], got[k]) for k in want)
    loaded.close()
    with pytest.raises(UserError, match="fewer than the checkpoint's 999"):
        Replay(path, load=True, state={**state, "disk_frames": 999}, **make)
