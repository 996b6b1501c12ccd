"""Pixel DQN on Atari: the atari100k and dqn_atari recipes, uint8 frames end to end, augmentation in updates."""

from __future__ import annotations

import csv
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

import ML
from ML.agents.dqn import DQNAgent, Dueling
from ML.blocks.rainbow import FullRainbowNetwork
from ML.blocks.vision import DrQAtariAug, NatureCNN
from ML.checkpoints import agent_settings
from ML.envs.atari import Atari
from ML.envs.classic import Classic
from ML.errors import UserError
from ML.hyperparams import instantiate, resolve_config
from ML.replay import Replay


def _agent(spec, task: str, **overrides) -> DQNAgent:
    config = resolve_config((), {"task": task, "device": "cpu", **overrides})
    return instantiate(config.Agent, {**config.agent, "spec": spec, "settings": agent_settings(config)}, label="Agent")


def test_recipes_build_the_nature_network() -> None:
    spec = Atari("pong").task_spec
    nature = _agent(spec, "dqn_atari")
    assert isinstance(nature.q[0], NatureCNN)
    assert sum(p.numel() for p in nature.q.parameters()) == 1_687_206  # Mnih et al. 2015, 6 actions
    drq = _agent(spec, "atari100k")  # DrQ(ε): dopamine's FullRainbowNetwork, its own dueling heads
    assert isinstance(drq.q[1], FullRainbowNetwork) and not isinstance(drq.q, Dueling)
    assert sum(p.numel() for p in drq.q.parameters()) == 4_047_015
    assert nature.reward_clip == drq.reward_clip == 1.0 and drq.grad_clip == 0.0
    assert isinstance(_agent(spec, "atari100k").aug, DrQAtariAug)
    dueling = _agent(spec, "dqn_atari", **{"agent.dueling": True})  # the agent's wrapper: a value stream more
    assert isinstance(dueling.q, Dueling) and isinstance(dueling.q.body[0], NatureCNN)
    assert sum(p.numel() for p in dueling.q.parameters()) == 1_687_206 + 3136 * 512 + 512 + 512 + 1
    assert _agent(spec, "dqn_atari").aug is None
    assert _agent(spec, "atari100k", **{"agent.augment": False}).aug is None
    config = resolve_config((), {"task": "atari100k"})
    assert (config.env["protocol"], config.train_steps, config.agent["n_step"]) == ("atari100k", 100_000, 10)


class _Counting(torch.nn.Module):
    def __init__(self, in_shape=None):
        super().__init__()
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        assert x.dtype == torch.float32
        return x


def test_pixels_stay_uint8_and_augmentation_is_for_updates_only() -> None:
    env = Atari("pong", max_episode_frames=400)
    spec = env.task_spec
    agent = _agent(spec, "atari100k", batch_size=4, Aug=_Counting, aug={}, **{"agent.learn_start": 0})
    replay = Replay(None, 1000, spec.obs_shape, np.uint8, (), np.int64, frame_stack=4)
    obs, _ = env.reset(seed=0)
    replay.start(obs)
    for step in range(12):
        action = agent.act(obs, step)
        obs, reward, terminated, truncated, _ = env.step(action)
        replay.add(action, reward, obs, terminated, truncated)
    assert agent.aug.calls == 0  # acting never augments
    assert replay.sample(4)["obs"].dtype == torch.uint8
    before = [p.detach().clone() for p in agent.q.parameters()]
    logs = agent.update(replay, 100)
    assert agent.aug.calls == 2 and np.isfinite(logs["loss"])  # obs and next_obs, each once
    assert any(not torch.equal(a, b) for a, b in zip(before, agent.q.parameters(), strict=True))
    assert agent.act(obs, 0, eval_mode=True) in range(spec.num_actions)


def test_augmentation_needs_images() -> None:
    with pytest.raises(UserError, match="RandomShiftsAug works on images.*drop Aug"):
        _agent(Classic("CartPole-v1").task_spec, "dqn", Aug="RandomShiftsAug")


def test_reward_clip_reaches_the_replay() -> None:
    spec = Classic("CartPole-v1").task_spec
    agent = _agent(spec, "dqn", batch_size=8, **{"agent.learn_start": 0, "agent.reward_clip": 1.0,
                                                 "agent.n_step": 1, "agent.gamma": 0.5})
    seen = {}

    class Spy(Replay):
        def sample(self, *args, **kwargs):
            batch = super().sample(*args, **kwargs)
            seen["reward"] = batch["reward"]
            return batch

    replay = Spy(None, 100, (4,), np.float32, (), np.int64)
    replay.start(np.zeros(4, np.float32))
    for t in range(20):
        replay.add(0, 10.0 * (-1) ** t, np.full(4, t, np.float32), False, False)
    agent.update(replay, 0)
    assert set(seen["reward"].abs().tolist()) == {1.0}


def test_atari100k_pixel_dqn_end_to_end(workdir: Path) -> None:
    agent = ML.launch(task="atari100k", train_steps=200, evaluate_per_steps=200, evaluate_episodes=1,
                      log_per_steps=50, batch_size=8, threads=1, device="cpu", progress=False,
                      evaluate_episodes_final=1, **{"agent.learn_start": 50, "env.max_episode_frames": 2000})
    run = workdir / "results/Exp/runs/atari100k/Atari/pong/0"
    assert {p.name for p in run.iterdir()} >= {"eval.csv", "train.csv", "replay.h5", "agent.pt", "run.json"}
    train = list(csv.DictReader((run / "train.csv").open()))
    assert [int(r["step"]) for r in train] == [50, 100, 150, 200]
    assert all(np.isfinite(float(r["loss"])) for r in train[1:]) and int(train[-1]["frame"]) == 800
    evals = list(csv.DictReader((run / "eval.csv").open()))
    assert [int(r["step"]) for r in evals] == [0, 200]
    for row in evals:  # one greedy episode, cut at 2000 frames (4 per step, up to 29 no-op steps first)
        assert int(row["episodes"]) == 1 and (2000 - 29 * 4) / 4 <= float(row["length"]) <= 2000 / 4
        # the raw game score: whole points, and an untrained agent loses some to Pong's opponent in 2000 frames
        assert float(row["score"]).is_integer() and -21 <= float(row["score"]) < 0
    with h5py.File(run / "replay.h5", "r") as f:  # one 84x84 gray frame per step, not a 4-frame stack
        assert f["obs"].shape[1:] == (1, 84, 84) and f["obs"].dtype == np.uint8
        assert f["obs"].shape[0] >= 201
    assert isinstance(agent, DQNAgent) and agent.updates == 150


def test_dueling_head_is_value_plus_centred_advantage() -> None:
    spec = Atari("pong").task_spec
    q = _agent(spec, "dqn_atari", device="cpu", **{"agent.dueling": True}).q
    x = torch.randint(0, 255, (3, *spec.obs_shape), dtype=torch.uint8).float()
    h = q.body(x)
    a, v = q.advantage(h), q.value(h)
    assert v.shape == (3, 1) and a.shape == (3, spec.num_actions)
    assert torch.allclose(q(x), v + a - a.mean(1, keepdim=True))
    assert torch.allclose(q(x).mean(1), v.squeeze(1), atol=1e-5)  # advantages centred: mean Q is V
