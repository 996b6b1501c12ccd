"""Prioritized sampling (sum tree) and SPR's subsequences in the real Replay."""

from __future__ import annotations

import numpy as np
import pytest

from ML.replay import Replay
from ML.sumtree import SumTree


def _filled(episodes: list[int], capacity: int = 1000, frame_stack: int = 1) -> Replay:
    """Episodes of the given lengths; every observation holds its frame number, action = frame number % 7."""
    shape = (frame_stack,) if frame_stack > 1 else (1,)
    replay = Replay(None, capacity, shape, np.float32, (), np.int64, frame_stack=frame_stack)
    frame = 0
    for length in episodes:
        replay.start(np.full(shape, frame, np.float32))
        for t in range(length):
            frame += 1
            replay.add(frame % 7, 1.0, np.full(shape, frame, np.float32), t == length - 1, False)
        frame += 1  # the next episode's first frame
    return replay


def test_sum_tree_sums_and_inverts_the_cdf() -> None:
    tree = SumTree(5)
    tree.set(np.array([0, 1, 3]), np.array([1.0, 2.0, 3.0]))
    assert tree.total == 6.0 and tree.max_recorded == 3.0
    assert list(tree.query(np.array([0.0, 0.99, 1.0, 2.99, 3.0, 5.99]))) == [0, 0, 1, 1, 3, 3]
    tree.set(np.array([1, 1]), np.array([0.5, 9.0]))  # a repeated index keeps its first value
    assert tree.get(np.array([1]))[0] == 0.5 and tree.total == 4.5


def test_uniform_sampling_keeps_no_priorities() -> None:
    replay = _filled([5, 5])
    batch = replay.sample(8, 3, 0.9)
    assert replay._tree is None and "index" not in batch and "probability" not in batch


def test_prioritized_sampling_is_proportional_and_new_transitions_get_the_largest_priority() -> None:
    replay = _filled([10, 10])  # 20 transitions
    batch = replay.sample(4, 1, 0.9, prioritized=True)
    np.testing.assert_allclose(batch["probability"].numpy(), 1 / 20)  # every transition at priority 1
    slots = replay._slots[: len(replay)].copy()
    priorities = np.arange(1, 21, dtype=np.float64)
    replay.update_priorities(slots, priorities)
    draws = np.concatenate([replay.sample(5000, 1, 0.9, prioritized=True)["index"].numpy() for _ in range(8)])
    frequency = np.array([(draws == s).mean() for s in slots])
    np.testing.assert_allclose(frequency, priorities / priorities.sum(), atol=0.006)
    batch = replay.sample(64, 1, 0.9, prioritized=True)
    expected = priorities[np.searchsorted(slots, batch["index"].numpy())] / priorities.sum()
    np.testing.assert_allclose(batch["probability"].numpy(), expected, rtol=1e-6)
    # a new transition enters at the largest priority recorded (20), as Schaul et al. and dopamine
    replay.start(np.zeros(1, np.float32))
    replay.add(0, 0.0, np.zeros(1, np.float32), False, False)
    newest = replay._slots[len(replay) - 1]
    assert replay._tree.get(np.array([newest]))[0] == 20.0


def test_overwritten_transitions_are_never_drawn() -> None:
    replay = _filled([30], capacity=16)
    replay.prioritize()
    batch = replay.sample(4000, 1, 0.9, prioritized=True)
    assert replay._valid[batch["index"].numpy()].all()
    assert replay._tree.total == pytest.approx(len(replay))  # evicted slots hold no priority


def test_stratified_draws_one_per_slice() -> None:
    replay = _filled([10])
    index = replay.sample(10, 1, 0.9, prioritized=True, stratified=True)["index"].numpy()
    assert list(index) == list(range(10))  # equal priorities: slice i is slot i


def test_sequences_follow_the_episode_and_mask_past_its_end() -> None:
    replay = _filled([4, 6])  # frames 0..4 (episode 1), 5..11 (episode 2)
    batch = replay.sample(500, 2, 0.9, sequence=3)
    obs = batch["obs"][:, 0].numpy()
    future = batch["future_obs"][..., 0].numpy()
    same = batch["same_episode"].numpy()
    actions = batch["actions"].numpy()
    for o, f, s, a in zip(obs, future, same, actions, strict=True):
        last = 4 if o < 5 else 11  # the episode's last frame
        ahead = np.arange(1, 4)
        assert list(s) == list((o + ahead <= last).astype(float))
        assert list(f) == list(np.minimum(o + ahead, last))  # past the end: the last frame repeats (masked)
        for k in range(3):
            if o + k < last:
                assert a[k] == (o + k + 1) % 7  # the action taken at frame o + k
    assert set(obs) == set(range(4)) | set(range(5, 11))


def test_sequences_rebuild_frame_stacks() -> None:
    replay = _filled([6], frame_stack=2)
    batch = replay.sample(200, 1, 0.9, sequence=2)
    for o, f in zip(batch["obs"].numpy(), batch["future_obs"].numpy(), strict=True):
        t = int(o[1])
        for k in range(2):
            now = min(t + k + 1, 6)
            assert list(f[k]) == [max(now - 1, 0), now]  # [previous frame, frame], the first one repeated
