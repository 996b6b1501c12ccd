"""DQNAgent and RandomAgent on real gymnasium tasks; the dqn/RL/random recipes through the real ML command."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

import ML
from ML.agents.dqn import DQNAgent
from ML.agents.random import RandomAgent
from ML.checkpoints import agent_settings
from ML.envs.classic import Classic
from ML.errors import UserError
from ML.hyperparams import instantiate, resolve_config
from ML.replay import Replay
from tests.conftest import run_ml


def _config(**overrides):
    return resolve_config((), {"task": "dqn", "model.hidden_dim": 32, **overrides})


def _agent(env: Classic, config, **args) -> DQNAgent:
    return instantiate(config.Agent, {**config.agent, **args,
                                      "spec": env.task_spec, "settings": agent_settings(config)},
                       label="Agent")


def test_epsilon_decays_linearly_then_stays() -> None:
    agent = _agent(Classic("CartPole-v1"), _config(), eps_start=1.0, eps_end=0.1, eps_decay_steps=100)
    assert [agent.epsilon(s) for s in (0, 50, 100, 10_000)] == pytest.approx([1.0, 0.55, 0.1, 0.1])
    assert _agent(Classic("CartPole-v1"), _config(), eps_decay_steps=0).epsilon(0) == 0.05


def test_short_training_run_updates_on_schedule() -> None:
    torch.manual_seed(0)
    env, config = Classic("CartPole-v1"), _config(batch_size=32)
    agent = _agent(env, config, learn_start=100, target_update=50, eps_decay_steps=300, update_every=2)
    replay = Replay(None, 10_000, env.task_spec.obs_shape, np.float32, (), np.int64)
    before = [p.detach().clone() for p in agent.q.parameters()]
    obs, _ = env.reset()
    replay.start(obs)
    logs = []
    for step in range(400):
        action = agent.act(obs, step)
        assert isinstance(action, int) and 0 <= action < 2
        obs, reward, terminated, truncated, _ = env.step(action)
        replay.add(action, reward, obs, terminated, truncated)
        logs.append(agent.update(replay, step))
        if terminated or truncated:
            obs, _ = env.reset()
            replay.start(obs)
    assert all(log == {} for log in logs[:100])  # nothing before learn_start
    learned = [log for log in logs if log]
    assert len(learned) == 150 and agent.updates == 150  # one update every 2 steps from step 100
    assert set(learned[-1]) == {"loss", "q", "epsilon"}
    assert all(np.isfinite(log["loss"]) and np.isfinite(log["q"]) for log in learned)
    assert any(not torch.equal(a, b) for a, b in zip(before, agent.q.parameters(), strict=True))
    # the target network is a hard copy made every target_update updates
    for a, b in zip(agent.q.parameters(), agent.target.parameters(), strict=True):
        assert torch.equal(a, b)  # 150 is a multiple of 50


def test_polyak_target_moves_a_little_each_update() -> None:
    env, config = Classic("CartPole-v1"), _config(batch_size=8)
    agent = _agent(env, config, tau=0.5, learn_start=0)
    replay = Replay(None, 100, (4,), np.float32, (), np.int64)
    obs, _ = env.reset(seed=0)
    replay.start(obs)
    for t in range(20):
        replay.add(0, 1.0, np.full(4, t, np.float32), False, False)
    old_target = [p.clone() for p in agent.target.parameters()]
    agent.update(replay, 0)
    for old, new, online in zip(old_target, agent.target.parameters(), agent.q.parameters(), strict=True):
        assert torch.allclose(new, 0.5 * old + 0.5 * online)


def test_greedy_evaluation_is_deterministic_and_agent_pickles(tmp_path: Path) -> None:
    env = Classic("Acrobot-v1")
    agent = _agent(env, _config(), eps_start=1.0)
    obs = [env.reset(seed=s)[0] for s in range(20)]
    greedy = [agent.act(o, 0, eval_mode=True) for o in obs]
    assert greedy == [agent.act(o, 0, eval_mode=True) for o in obs]
    assert len({agent.act(obs[0], 0) for _ in range(50)}) > 1  # eps = 1 while training: random
    torch.save({"agent": agent}, tmp_path / "agent.pt")
    loaded = torch.load(tmp_path / "agent.pt", weights_only=False)["agent"]
    assert [loaded.act(o, 0, eval_mode=True) for o in obs] == greedy
    assert loaded.rng.random() == agent.rng.random()  # its own generator travels with it


def test_dqn_refuses_continuous_actions() -> None:
    with pytest.raises(UserError, match="DQNAgent needs discrete actions but Pendulum-v1"):
        _agent(Classic("Pendulum-v1"), _config())


def test_random_agent_is_uniform_and_seeded() -> None:
    config = resolve_config((), {"task": "random", "seed": 4})
    agent = RandomAgent(Classic("Acrobot-v1").task_spec, agent_settings(config))
    actions = [agent.act(None, 0) for _ in range(300)]
    assert set(actions) == {0, 1, 2}
    same = RandomAgent(Classic("Acrobot-v1").task_spec, agent_settings(config))
    assert actions == [same.act(None, 0) for _ in range(300)]
    pendulum = RandomAgent(Classic("Pendulum-v1").task_spec, agent_settings(config))
    action = pendulum.act(None, 0, eval_mode=True)
    assert action.shape == (1,) and action.dtype == np.float32 and -2 <= action[0] <= 2
    assert pendulum.update(None, 0) == {}


def test_rl_recipe_is_dqn_on_classic() -> None:
    config = resolve_config(argv=["task=RL", "env.task=Acrobot-v1"])
    assert config.Agent == "DQNAgent" and config.Env == "Classic" and config.env == {"task": "Acrobot-v1"}
    assert config.train_steps == 50_000


def _rows(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(path.read_text())))


def test_dqn_end_to_end_writes_the_run_directory(workdir: Path) -> None:
    run_ml("task=dqn", "train_steps=2000", "evaluate_per_steps=1000", "evaluate_episodes=3",
           "log_per_steps=500", "agent.learn_start=500", "threads=1", cwd=workdir)
    run = workdir / "results/Exp/runs/dqn/Classic/CartPole-v1/0"
    assert {p.name for p in run.iterdir()} >= {"eval.csv", "train.csv", "replay.h5", "agent.pt", "run.json"}
    evals = _rows(run / "eval.csv")
    assert [int(r["step"]) for r in evals] == [0, 1000, 2000]
    # CartPole pays 1 per step: the mean return is the mean episode length (learning: the test below)
    assert all(int(r["episodes"]) == 3 and float(r["score"]) == float(r["length"]) > 0 for r in evals)
    train = _rows(run / "train.csv")
    assert [int(r["step"]) for r in train] == [500, 1000, 1500, 2000]
    assert np.isfinite(float(train[-1]["loss"])) and float(train[-1]["epsilon"]) < 1
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "complete"
    with h5py.File(run / "replay.h5", "r") as f:
        assert f["obs"].shape[0] == 2000 + f["episodes"].shape[0]  # every step's frame, plus one per episode
        assert int(f["valid"][:].sum()) == 2000
    agent = ML.load_agent(str(run / "agent.pt"))
    assert isinstance(agent, DQNAgent) and agent.updates == 750  # one update every 2 steps from 500
    assert agent.act(np.zeros(4, np.float32), 0, eval_mode=True) in (0, 1)


def _random_return(workdir: Path, seed: int) -> float:
    """The random policy's mean return on the evaluation episodes a seed-``seed`` run plays."""
    ML.launch(task="random", seed=seed, evaluate_episodes=10, experiment="random", progress=False)
    return float(_rows(workdir / f"results/random/runs/random/Classic/CartPole-v1/{seed}/eval.csv")[0]["score"])


@pytest.mark.parametrize("seed", [1, 2])
def test_trained_dqn_beats_a_random_policy(workdir: Path, seed: int) -> None:
    """3000 environment steps (seconds on a CPU): the greedy policy balances the pole several times longer
    than random actions do (measured: seeds 0, 1, 2 reach 144, 193, 250; random 16, 24, 30)."""
    ML.launch(task="dqn", seed=seed, train_steps=3000, evaluate_per_steps=3000, evaluate_episodes=10,
              threads=1, progress=False, save=False, **{"agent.learn_start": 500, "agent.eps_decay_steps": 3000})
    trained = float(_rows(workdir / f"results/Exp/runs/dqn/Classic/CartPole-v1/{seed}/eval.csv")[-1]["score"])
    random = _random_return(workdir, seed)
    assert 10 < random < 40  # CartPole's random return, as published (~22)
    assert trained > 3 * random, (trained, random)


def test_random_baseline_end_to_end(workdir: Path) -> None:
    run_ml("task=random", "env.task=Acrobot-v1", "evaluate_episodes=3", cwd=workdir)
    run = workdir / "results/Exp/runs/random/Classic/Acrobot-v1/0"
    evals = _rows(run / "eval.csv")
    assert len(evals) == 1 and int(evals[0]["step"]) == 0 and float(evals[0]["score"]) < -300
    assert json.loads((run / "run.json").read_text())["status"] == "complete"


def test_optimiser_is_fused_when_it_can_be() -> None:
    env = Classic("CartPole-v1")
    assert _agent(env, _config()).optim.defaults["fused"] is True
    assert _agent(env, _config(**{"optim.fused": False})).optim.defaults["fused"] is False
    rmsprop = _agent(env, _config(Optim="RMSprop"))  # takes no `fused`: built without it
    assert type(rmsprop.optim).__name__ == "RMSprop"


def test_optimiser_is_torchs_own_adam() -> None:
    optim = _agent(Classic("CartPole-v1"), _config()).optim
    assert type(optim) is torch.optim.Adam  # public torch only: no subclass stepping private kernels


def test_batched_evaluation_plays_the_same_seeded_episodes_as_sequential(tmp_path: Path) -> None:
    from ML.collectors import episode_seed
    from ML.drivers.interactive import Interactive

    episodes = 18  # 16 envs (evaluate_envs), twice: the second round plays 2 episodes on 2 of them
    config = _config(evaluate_episodes=episodes)
    driver = Interactive(config)
    driver.open(tmp_path, resume=False)
    agent = _agent(driver.collector.env, config)
    batched = driver.evaluate(agent, 0)
    assert len(driver.evaluator._envs) == 16
    seeds = [episode_seed(0, 1, 0, i) for i in range(episodes)]
    returns, lengths = driver.evaluator.sequential(agent, 0, seeds)  # the same seeds, one after another
    driver.close(keep=False)
    assert batched["episodes"] == episodes
    assert len(set(lengths)) > 1  # different seeds, different episodes
    assert batched["score"] == pytest.approx(np.mean(returns))
    assert batched["length"] == pytest.approx(np.mean(lengths))


def test_clip_grad_norm_matches_torch() -> None:
    from ML.blocks.optim import clip_grad_norm

    torch.manual_seed(0)
    for scale in (0.01, 100.0):  # under the limit (unchanged) and over it (scaled down)
        params = [torch.nn.Parameter(torch.randn(5, 3)) for _ in range(3)]
        for p in params:
            p.grad = torch.randn_like(p) * scale
        copies = [torch.nn.Parameter(p.detach().clone()) for p in params]
        for p, c in zip(params, copies, strict=True):
            c.grad = p.grad.clone()
        clip_grad_norm(params, 1.0)
        torch.nn.utils.clip_grad_norm_(copies, 1.0, foreach=True)
        for p, c in zip(params, copies, strict=True):
            assert torch.equal(p.grad, c.grad)


def test_acting_in_numpy_is_the_torch_network_before_and_after_updates() -> None:
    from ML.blocks.network import NumpyMLP

    torch.manual_seed(0)
    env, config = Classic("CartPole-v1"), _config(batch_size=32)
    agent = _agent(env, config, learn_start=0, eps_start=0.0, eps_end=0.0)
    assert agent._act_numpy is not None  # Identity → MLP on the CPU: acts in numpy
    obs = np.random.default_rng(0).normal(size=(64, 4)).astype(np.float32)

    def torch_actions() -> list[int]:
        with torch.no_grad():
            return agent.q(torch.from_numpy(obs)).argmax(1).tolist()

    replay = Replay(None, 1000, (4,), np.float32, (), np.int64)
    replay.start(obs[0])
    for i in range(1, 64):
        replay.add(i % 2, 1.0, obs[i], False, False)
    for _ in range(2):  # the numpy layers are views: updates in place change what it computes
        with torch.no_grad():
            expected = agent.q(torch.from_numpy(obs)).numpy()
        assert np.allclose(np.stack([agent._act_numpy(o) for o in obs]), expected, atol=1e-5)
        assert [agent.act(o, 10_000) for o in obs] == torch_actions()
        for step in range(20):
            agent.update(replay, step)
    before = agent.q(torch.from_numpy(obs)).detach().numpy()
    agent.q.load_state_dict(_agent(env, config).q.state_dict())  # a checkpoint's weights, copied in place
    assert not np.allclose(agent._act_numpy(obs[0]), before[0])
    assert [agent.act(o, 10_000) for o in obs] == torch_actions()
    assert NumpyMLP.of(torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.GELU())) is None  # other layers
    tanh = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))  # PPO's networks
    with torch.no_grad():
        assert np.allclose(NumpyMLP.of(tanh).batch(obs), tanh(torch.from_numpy(obs)).numpy(), atol=1e-5)
    assert _agent(env, config, dueling=True)._act_numpy is None  # a dueling head: torch acts
