"""PPO and SAC: their math against independent computations, their collectors on real envs, real training."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ML.agents.ppo import PPOAgent
from ML.agents.sac import SACAgent
from ML.blocks.running import RunningMeanStd
from ML.checkpoints import agent_settings
from ML.collectors import Collector
from ML.collectors.rollout import Rollouts
from ML.envs.base import EnvSettings
from ML.envs.classic import Classic
from ML.hyperparams import resolve_config
from tests.conftest import run_ml


def _ppo(task: str = "CartPole-v1", *args: str, **agent: object) -> tuple[PPOAgent, object]:
    config = resolve_config(argv=["task=ppo", f"env.task={task}", "threads=1", *args])
    spec = Classic(task).task_spec
    return PPOAgent(spec, agent_settings(config), **{**config.agent, **agent}), config


def test_rollouts_step_n_envs_and_bootstrap_truncated_episodes(tmp_path) -> None:
    """A rollout is [n_steps, num_envs]; an env whose time limit ends its episode is reset at once and its last
    observation kept for bootstrapping; train_steps count env steps (one vector step every num_envs)."""
    agent, config = _ppo("CartPole-v1", "env.max_episode_steps=3", num_envs=3, n_steps=4)
    rollouts = Rollouts(EnvSettings.from_config(config), int(config.seed), 3, 4)
    assert isinstance(rollouts, Collector)
    rollouts.open(tmp_path, False)
    got, lengths = [], []
    for step in range(3 * 4):
        rollout = rollouts.collect(agent, step)
        lengths.append(rollouts.finish().get("episode_length"))
        got.append(rollout)
        if step % 3:
            assert rollout is None  # between vector steps
    rollout = got[9]
    assert rollout is not None and all(r is None for r in got[:9] + got[10:])
    assert rollout["obs"].shape == (4, 3, 4) and rollout["action"].shape == (4, 3)
    assert rollout["reward"].shape == rollout["log_prob"].shape == rollout["value"].shape == (4, 3)
    ended = rollout["truncated"] | rollout["terminated"]
    assert ended[2].all() and rollout["truncated"][2].all()  # the 3-step limit cuts every env's first episode
    truncated = rollout["truncated"]
    assert np.abs(rollout["final_obs"][truncated]).sum() > 0 and not rollout["final_obs"][~truncated].any()
    assert rollouts.episode >= 3
    assert lengths[6:9] == [3, 3, 3]  # the third vector step ends three episodes, reported one a loop step
    rollouts.close(False)


def test_gae_matches_a_step_by_step_computation() -> None:
    agent, _ = _ppo(gamma=0.9, gae_lambda=0.8)
    rng = np.random.default_rng(0)
    t_steps, n = 6, 2
    rollout = {"obs": rng.normal(size=(t_steps, n, 4)).astype(np.float32),
               "value": rng.normal(size=(t_steps, n)).astype(np.float32),
               "terminated": np.zeros((t_steps, n), bool), "truncated": np.zeros((t_steps, n), bool),
               "final_obs": np.zeros((t_steps, n, 4), np.float32),
               "last_obs": rng.normal(size=(n, 4)).astype(np.float32)}
    rollout["terminated"][2, 0] = True
    rollout["truncated"][4, 1] = True
    rollout["final_obs"][4, 1] = rng.normal(size=4)
    reward = rng.normal(size=(t_steps, n)).astype(np.float32)
    adv, ret = agent._advantages(rollout, reward)
    last = agent._values(rollout["last_obs"])
    final = agent._values(rollout["final_obs"][4, 1][None])[0]
    for i in range(n):  # SB3's recursion: a truncated step adds γ V(final obs) to its reward, then stops
        expected, running = np.zeros(t_steps), 0.0
        for t in reversed(range(t_steps)):
            r = reward[t, i] + (0.9 * final if rollout["truncated"][t, i] else 0.0)
            done = rollout["terminated"][t, i] or rollout["truncated"][t, i]
            following = last[i] if t == t_steps - 1 else rollout["value"][t + 1, i]
            delta = r + 0.9 * following * (not done) - rollout["value"][t, i]
            running = delta + 0.9 * 0.8 * (not done) * running
            expected[t] = running
        np.testing.assert_allclose(adv[:, i], expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ret, adv + rollout["value"], rtol=1e-6)


def test_ppo_log_probs_match_torch_distributions() -> None:
    """The log-probabilities acting records are the ones the update recomputes (ratio 1 before any step)."""
    for task in ("CartPole-v1", "Pendulum-v1"):
        agent, _ = _ppo(task, log_std_init=-0.3)
        obs = np.random.default_rng(1).normal(size=(5, agent.actor.in_shape[0])).astype(np.float32)
        out = agent.explore(obs, 0)
        with torch.no_grad():
            head = agent.actor(torch.from_numpy(out["obs"]))
            log_prob, entropy = agent._log_prob(head, torch.from_numpy(out["action"]))
            if task == "CartPole-v1":
                dist = torch.distributions.Categorical(logits=head)
            else:
                dist = torch.distributions.Normal(head, agent.log_std.exp())
                assert np.all(np.abs(out["env_action"]) <= 2.0)  # [-1, 1] units clipped, scaled to Pendulum's ±2
            expected = dist.log_prob(torch.from_numpy(out["action"]))
            expected = expected.sum(1) if expected.dim() > 1 else expected
            np.testing.assert_allclose(log_prob.numpy(), expected.numpy(), rtol=1e-4, atol=1e-5)
            np.testing.assert_allclose(out["log_prob"], expected.numpy(), rtol=1e-4, atol=1e-5)
            ent = dist.entropy()
            np.testing.assert_allclose(entropy.numpy(), (ent.sum(1) if ent.dim() > 1 else ent).numpy(), rtol=1e-5)


def test_running_statistics_equal_the_whole_stream_s() -> None:
    rng = np.random.default_rng(0)
    batches = [rng.normal(3.0, 2.0, size=(k, 3)) for k in (1, 7, 64)]
    stats = RunningMeanStd((3,), epsilon=0.0)
    for batch in batches:
        stats.update(batch)
    whole = np.concatenate(batches)
    np.testing.assert_allclose(stats.mean.numpy(), whole.mean(0))
    np.testing.assert_allclose(stats.var.numpy(), whole.var(0))
    assert np.abs(stats.normalize(whole)).max() <= 10.0


def test_sac_squashed_log_prob_matches_a_tanh_transformed_normal() -> None:
    config = resolve_config(argv=["task=sac", "agent.hidden_dim=32"])
    agent = SACAgent(Classic("Pendulum-v1").task_spec, agent_settings(config), hidden_dim=32)
    obs = torch.randn(64, 3)
    with torch.no_grad():
        out = agent.actor(obs)
        action, log_prob, _ = agent._squash(out, torch.randn(64, 1))
        mean, log_std = out[:, :1], out[:, 1:].clamp(-20, 2)
        dist = torch.distributions.TransformedDistribution(
            torch.distributions.Normal(mean, log_std.exp()), [torch.distributions.TanhTransform()])
        expected = dist.log_prob(action.clamp(-0.999999, 0.999999)).sum(1)
    np.testing.assert_allclose(log_prob.detach().numpy(), expected.numpy(), rtol=1e-2, atol=2e-2)
    assert (agent.act_batch(obs.numpy(), 0, eval_mode=True) == agent.act_batch(obs.numpy(), 0, True)).all()
    assert np.abs(agent.act_batch(obs.numpy(), 0)).max() <= 2.0  # uniform in Pendulum's bounds before learn_start


def test_ppo_learns_cartpole(tmp_path: Path) -> None:
    """A real run of the recipe at a fifth of its budget: well above the untrained policy's return."""
    run_ml("task=ppo", "train_steps=20000", "evaluate_per_steps=10000", "threads=1", "progress=false",
           cwd=tmp_path)
    run = tmp_path / "results/Exp/runs/ppo/Classic/CartPole-v1/0"
    rows = list(csv.DictReader((run / "eval.csv").open()))
    assert [int(r["step"]) for r in rows] == [0, 10000, 20000]
    assert float(rows[-1]["score"]) >= 300, rows
    train = list(csv.DictReader((run / "train.csv").open()))
    assert {"policy_loss", "value_loss", "approx_kl", "lr", "episode_return"} <= set(train[-1])
    assert float(train[-1]["lr"]) < 1e-3 * 0.85  # annealed linearly towards 0 over the budget
    assert not (run / "replay.h5").exists()  # on-policy: no replay


def test_sac_trains_and_tunes_its_entropy_weight(tmp_path: Path) -> None:
    run_ml("task=sac", "train_steps=400", "evaluate_per_steps=0", "evaluate_episodes=2", "log_per_steps=100",
           "agent.learn_start=100", "agent.hidden_dim=32", "batch_size=32", "threads=1", "progress=false",
           cwd=tmp_path)
    run = tmp_path / "results/Exp/runs/sac/Classic/Pendulum-v1/0"
    train = list(csv.DictReader((run / "train.csv").open()))
    alphas = [float(r["alpha"]) for r in train if r.get("alpha")]
    assert len(alphas) == 3 and alphas[0] < 1.0 and alphas[-1] < alphas[0]  # α moves from 1 towards the target
    assert (run / "replay.h5").exists()


@pytest.mark.parametrize("args, words", [
    (["task=sac", "env.task=CartPole-v1"], "continuous actions"),
    (["task=ppo", "agent.num_envs=0"], "agent.num_envs"),
])
def test_bad_settings_are_one_line(tmp_path: Path, args: list[str], words: str) -> None:
    proc = run_ml(*args, "train_steps=10", cwd=tmp_path, check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and proc.stderr.count("\n") == 1
    assert words in proc.stderr
    assert not (tmp_path / "results").exists() or not any((tmp_path / "results").rglob("agent.pt"))


def test_sac_update_is_sb3s_three_steps() -> None:
    """α stepping with the critics (one Adam) and the actor's pass through detached critic weights give the
    same parameters as SB3's order with three Adams: α, then the critics, then the actor through the updated
    critics, then Polyak targets (computed here independently, twice, so Adam's second step counts too)."""
    import copy

    config = resolve_config(argv=["task=sac", "agent.hidden_dim=32", "threads=1"])
    agent = SACAgent(Classic("Pendulum-v1").task_spec, agent_settings(config), **{**config.agent, "hidden_dim": 32})
    actor, c1, c2 = (copy.deepcopy(m) for m in (agent.actor, agent.critic1, agent.critic2))
    t1, t2 = copy.deepcopy(c1), copy.deepcopy(c2)
    log_alpha = torch.zeros((), requires_grad=True)
    opts = [torch.optim.Adam(p, lr=1e-3) for p in ([log_alpha], [*c1.parameters(), *c2.parameters()],
                                                   actor.parameters())]
    rng = np.random.default_rng(0)
    batches = [{"obs": rng.standard_normal((16, 3), dtype=np.float32),
                "next_obs": rng.standard_normal((16, 3), dtype=np.float32),
                "action": rng.uniform(-2, 2, (16, 1)).astype(np.float32),
                "reward": rng.standard_normal(16, dtype=np.float32), "discount": np.full(16, 0.99, np.float32)}
               for _ in range(2)]

    def sample(obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, log_std = actor(obs).chunk(2, 1)
        std = log_std.clamp(-20, 2).exp()
        x = mean + std * torch.randn_like(mean)
        action = torch.tanh(x)
        log_prob = torch.distributions.Normal(mean, std).log_prob(x) - torch.log(1 - action ** 2 + 1e-6)
        return action, log_prob.sum(1)

    for b in batches:
        torch.manual_seed(1)
        agent.learn(b)
        torch.manual_seed(1)
        obs, next_obs, reward, discount = (torch.from_numpy(b[k]) for k in ("obs", "next_obs", "reward", "discount"))
        pi, log_prob = sample(obs)
        alpha = log_alpha.detach().exp()
        alpha_loss = -(log_alpha * (log_prob + -1.0).detach()).mean()
        opts[0].zero_grad()
        alpha_loss.backward()
        opts[0].step()
        with torch.no_grad():
            next_action, next_log_prob = sample(next_obs)
            x = torch.cat([next_obs, next_action], 1)
            target = reward + discount * (torch.min(t1(x), t2(x))[:, 0] - alpha * next_log_prob)
        x = torch.cat([obs, torch.from_numpy(b["action"]) / 2.0], 1)
        critic_loss = 0.5 * (F.mse_loss(c1(x)[:, 0], target) + F.mse_loss(c2(x)[:, 0], target))
        opts[1].zero_grad()
        critic_loss.backward()
        opts[1].step()
        x = torch.cat([obs, pi], 1)
        actor_loss = (alpha * log_prob - torch.min(c1(x), c2(x))[:, 0]).mean()
        opts[2].zero_grad()
        actor_loss.backward()
        opts[2].step()
        with torch.no_grad():
            for target_net, net in ((t1, c1), (t2, c2)):
                for p_target, p in zip(target_net.parameters(), net.parameters(), strict=True):
                    p_target.mul_(1 - 0.005).add_(0.005 * p)
    pairs = [(agent.actor, actor), (agent.critic1, c1), (agent.critic2, c2), (agent.critic1_target, t1),
             (agent.critic2_target, t2)]
    for ours, theirs in pairs:
        for a, b in zip(ours.parameters(), theirs.parameters(), strict=True):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(agent.log_alpha.detach(), log_alpha.detach())
    assert agent.log_alpha.item() != 0.0  # α moved


def test_sac_gradients_are_autograds_of_its_losses() -> None:
    """The written-out update's gradients (left in ``.grad``) equal autograd's of SB3's losses: the critics' and
    α's on the networks before the update, the actor's through the critics after their step. (Adam is blind to
    a gradient's scale, so the parameter test above would not see a wrong factor.)"""
    import copy

    config = resolve_config(argv=["task=sac", "agent.hidden_dim=32", "threads=1"])
    agent = SACAgent(Classic("Pendulum-v1").task_spec, agent_settings(config), **{**config.agent, "hidden_dim": 32})
    agent.learn_start = 0
    rng = np.random.default_rng(1)
    batch = {"obs": rng.standard_normal((16, 3), dtype=np.float32),
             "next_obs": rng.standard_normal((16, 3), dtype=np.float32),
             "action": rng.uniform(-2, 2, (16, 1)).astype(np.float32),
             "reward": rng.standard_normal(16, dtype=np.float32), "discount": np.full(16, 0.99, np.float32)}
    for _ in range(3):  # a few updates first, so α and the targets have moved
        agent.learn(batch)
    before = copy.deepcopy(agent)
    torch.manual_seed(7)
    agent.learn(batch)

    torch.manual_seed(7)
    obs, next_obs = torch.from_numpy(batch["obs"]), torch.from_numpy(batch["next_obs"])
    reward, discount = torch.from_numpy(batch["reward"]), torch.from_numpy(batch["discount"])

    def sample(out: torch.Tensor, noise: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, log_std = out.chunk(2, 1)
        std = log_std.clamp(-20, 2).exp()
        action = torch.tanh(mean + std * noise)
        log_prob = torch.distributions.Normal(mean, std).log_prob(mean + std * noise)
        return action, (log_prob - torch.log(1 - action ** 2 + 1e-6)).sum(1)

    out = before.actor(torch.cat([obs, next_obs]))
    pi, log_prob = sample(out[:16], torch.randn(16, 1))
    alpha = before.log_alpha.detach().exp()
    with torch.no_grad():
        next_action, next_log_prob = sample(out[16:], torch.randn(16, 1))
        x = torch.cat([next_obs, next_action], 1)
        target = reward + discount * (torch.min(before.critic1_target(x), before.critic2_target(x))[:, 0]
                                      - alpha * next_log_prob)
    x = torch.cat([obs, torch.from_numpy(batch["action"]) / 2.0], 1)
    critic_loss = 0.5 * (F.mse_loss(before.critic1(x)[:, 0], target) + F.mse_loss(before.critic2(x)[:, 0], target))
    alpha_loss = -(before.log_alpha * (log_prob + before.target_entropy).detach()).mean()
    (critic_loss + alpha_loss).backward(retain_graph=True)
    for ours, theirs in ((agent.critic1, before.critic1), (agent.critic2, before.critic2)):
        for a, b in zip(ours.parameters(), theirs.parameters(), strict=True):
            torch.testing.assert_close(a.grad, b.grad, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(agent.log_alpha.grad, before.log_alpha.grad)

    before.actor.zero_grad()
    x = torch.cat([obs, pi], 1)
    q = torch.min(torch.func.functional_call(agent.critic1, dict(agent.critic1.named_parameters()), (x,)),
                  torch.func.functional_call(agent.critic2, dict(agent.critic2.named_parameters()), (x,)))
    ((alpha * log_prob - q[:, 0]).mean()).backward(inputs=list(before.actor.parameters()))
    for a, b in zip(agent.actor.parameters(), before.actor.parameters(), strict=True):
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-4, atol=1e-6)
