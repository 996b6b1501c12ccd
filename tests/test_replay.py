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
