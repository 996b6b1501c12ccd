"""Our SAC update against Stable-Baselines3's own ``SAC.train``: the same weights, batches and noise.

    .venv/bin/pip install -e '.[bench]'          # stable-baselines3 (benchmarks only, never a run-time need)
    .venv/bin/python benchmarks/peer_sb3_sac_update.py [--updates 200] [--float32]

SB3's SAC (rl-zoo3's Pendulum-v1 settings: lr 1e-3, batch 256) is built, its actor, critics and targets are
copied into ``ML task=sac``'s ``SACAgent``, and both take ``--updates`` updates on the same random batches
(SB3's replay sample replaced by them) with torch's generator reseeded before each side's update, so both draw
the same noise for s and s'. Prints the largest difference of every network's parameters and of log α.

In float64 (the default) the two agree to ~1e-9 after 200 updates: the written-out update
(``ML.blocks.relu_stack``, α's Adam step taken with the critics', the actor's gradient through the smaller
critic's rows only) is SB3's, step for step. In float32 they agree to float precision after one update and
then drift apart, as two float32 runs of one algorithm do: Adam divides tiny gradients by their tiny running
scale, so rounding differences grow — the reason a per-seed comparison of final returns is a comparison of
two random draws.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import torch

INSTALL = ("benchmarks/peer_sb3_sac_update.py needs Stable-Baselines3, which the engine never needs: "
           "pip install -e '.[bench]'  (or pip install stable-baselines3==2.9.2)")


def _linears(module: torch.nn.Module) -> list[torch.nn.Linear]:
    return [m for m in module.modules() if isinstance(m, torch.nn.Linear)]


def _copy_weights(agent, policy) -> None:
    """SB3's actor (trunk, ``mu`` and ``log_std`` heads) and twin critics and targets into ours (one head of
    [mean, log std])."""
    ours, theirs = _linears(agent.actor), _linears(policy.actor.latent_pi)
    for o, t in zip(ours[:-1], theirs, strict=True):
        o.weight.copy_(t.weight)
        o.bias.copy_(t.bias)
    ours[-1].weight.copy_(torch.cat([policy.actor.mu.weight, policy.actor.log_std.weight]))
    ours[-1].bias.copy_(torch.cat([policy.actor.mu.bias, policy.actor.log_std.bias]))
    for k in range(2):
        for net, src in ((getattr(agent, f"critic{k + 1}"), policy.critic.q_networks[k]),
                         (getattr(agent, f"critic{k + 1}_target"), policy.critic_target.q_networks[k])):
            for o, t in zip(_linears(net), _linears(src), strict=True):
                o.weight.copy_(t.weight)
                o.bias.copy_(t.bias)


def _differences(agent, policy) -> dict[str, float]:
    """The largest |ours − SB3's| over each network's parameters."""
    def gap(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
        return max(float((x - y).detach().abs().max()) for x, y in zip(a, b, strict=True))

    ours, theirs = _linears(agent.actor), _linears(policy.actor)
    head = torch.cat([policy.actor.mu.weight, policy.actor.log_std.weight])
    head_bias = torch.cat([policy.actor.mu.bias, policy.actor.log_std.bias])
    out = {"actor": gap([p for m in ours[:-1] for p in (m.weight, m.bias)] + [ours[-1].weight, ours[-1].bias],
                        [p for m in theirs[:-2] for p in (m.weight, m.bias)] + [head, head_bias])}
    for name, src in (("critics", policy.critic), ("targets", policy.critic_target)):
        nets = (agent.critic1, agent.critic2) if name == "critics" else (agent.critic1_target, agent.critic2_target)
        out[name] = gap([p for n in nets for p in n.parameters()], list(src.parameters()))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--updates", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--float32", action="store_true", help="compare in float32 (default: float64)")
    args = parser.parse_args()
    try:
        import gymnasium
        import stable_baselines3
        import stable_baselines3.common.policies as sb3_policies
        from stable_baselines3 import SAC
        from stable_baselines3.common.type_aliases import ReplayBufferSamples
    except ImportError:
        print(INSTALL, file=sys.stderr)
        return 2
    from ML.agents.sac import SACAgent
    from ML.checkpoints import agent_settings
    from ML.envs.classic import Classic
    from ML.hyperparams import resolve_config

    torch.set_num_threads(1)
    dtype = torch.float32 if args.float32 else torch.float64
    torch.set_default_dtype(dtype)  # both sides build their networks and noise in it
    sb3_policies.preprocess_obs = lambda obs, *_, **__: obs  # SB3 casts observations to float32 otherwise

    config = resolve_config(argv=["task=sac", "threads=1", f"batch_size={args.batch_size}"])
    agent = SACAgent(Classic("Pendulum-v1").task_spec, agent_settings(config), **config.agent)
    agent._tensor = lambda x: torch.as_tensor(x, dtype=dtype)  # batches in the chosen precision
    model = SAC("MlpPolicy", gymnasium.make("Pendulum-v1"), learning_rate=float(config.lr),
                batch_size=args.batch_size, seed=0, device="cpu")
    with torch.no_grad():
        _copy_weights(agent, model.policy)
    model._setup_learn(args.updates)
    queue: list[ReplayBufferSamples] = []
    model.replay_buffer.sample = lambda *_, **__: queue.pop(0)

    rng, n = np.random.default_rng(0), args.batch_size
    scale = float(agent._scale[0]) if np.ndim(agent._scale) else float(agent._scale)
    for update in range(args.updates):
        obs, next_obs = rng.standard_normal((n, 3)), rng.standard_normal((n, 3))
        action, reward = rng.uniform(-scale, scale, (n, 1)), rng.standard_normal(n) * 3 - 5
        terminal = rng.random(n) < 0.05
        torch.manual_seed(update)
        agent.learn({"obs": obs, "next_obs": next_obs, "action": action, "reward": reward,
                     "discount": 0.99 * ~terminal})
        tensor = lambda x: torch.as_tensor(x, dtype=dtype)  # noqa: E731
        queue.append(ReplayBufferSamples(tensor(obs), tensor(action / scale), tensor(next_obs),
                                         tensor(terminal)[:, None], tensor(reward)[:, None], None))
        torch.manual_seed(update)
        model.train(gradient_steps=1, batch_size=n)

    print(f"SAC update, ours vs SB3 {stable_baselines3.__version__} after {args.updates} updates "
          f"(batch {n}, {str(dtype).removeprefix('torch.')}), largest parameter difference:")
    for name, value in _differences(agent, model.policy).items():
        print(f"  {name:8}: {value:.3g}")
    print(f"  log α   : {abs(agent.log_alpha.item() - model.log_ent_coef.item()):.3g} "
          f"(ours {agent.log_alpha.item():.6f}, SB3 {model.log_ent_coef.item():.6f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
