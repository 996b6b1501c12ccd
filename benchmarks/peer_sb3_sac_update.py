"""Our SAC update against Stable-Baselines3's own ``SAC.train``: the same weights, batches and noise.

    .venv/bin/pip install -e '.[bench]'          # stable-baselines3 (benchmarks only, never a run-time need)
    .venv/bin/python benchmarks/peer_sb3_sac_update.py [--updates 200] [--float32]

SB3's SAC (rl-zoo3's Pendulum-v1 settings: lr 1e-3, batch 256) is built, its actor, critics and targets are
copied into ``ML task=sac``'s ``SACAgent``, and both take ``--updates`` updates on the same random batches
(SB3's replay sample replaced by them) with torch's generator reseeded before each side's update, so both draw
the same noise for s and s'. Prints the largest difference of every network's parameters and of log α.

In float64 (the default) the two agree to ~1e-15 after 200 updates: the written-out update
(``ML.blocks.relu_stack``, α's Adam step taken with the critics', the actor's gradient through the smaller
critic's rows only) is SB3's, step for step. In float32 the critics agree to rounding (~1e-7) after one update
but the actor already differs by ~6e-5, and every network drifts further with each update (~0.07 after 200),
as two float32 runs of one algorithm do: Adam divides tiny gradients by their tiny running scale, so rounding
differences grow — the reason a per-seed comparison of final returns is a comparison of two random draws.
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


def _pairs(agent, policy) -> dict[str, list[tuple[torch.Tensor, torch.Tensor]]]:
    """Each network's parameters as (ours, SB3's) pairs: SB3's actor has a trunk and two heads, ``mu`` and
    ``log_std``, where ours has one head of [mean, log std]."""
    ours, trunk = _linears(agent.actor), _linears(policy.actor.latent_pi)
    actor = [(o.weight, t.weight) for o, t in zip(ours[:-1], trunk, strict=True)]
    actor += [(o.bias, t.bias) for o, t in zip(ours[:-1], trunk, strict=True)]
    actor += [(ours[-1].weight, torch.cat([policy.actor.mu.weight, policy.actor.log_std.weight])),
              (ours[-1].bias, torch.cat([policy.actor.mu.bias, policy.actor.log_std.bias]))]
    pairs = {"actor": actor}
    for name, suffix, sb3_nets in (("critics", "", policy.critic), ("targets", "_target", policy.critic_target)):
        pairs[name] = [pair for k in range(2) for pair in
                       zip(getattr(agent, f"critic{k + 1}{suffix}").parameters(),
                           sb3_nets.q_networks[k].parameters(), strict=True)]
    return pairs


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
    def tensor(x: object) -> torch.Tensor:
        return torch.as_tensor(x, dtype=dtype)

    agent._tensor = tensor  # batches in the chosen precision
    model = SAC("MlpPolicy", gymnasium.make("Pendulum-v1"), learning_rate=float(config.lr),
                batch_size=args.batch_size, seed=0, device="cpu")
    with torch.no_grad():
        for pairs in _pairs(agent, model.policy).values():
            for ours, theirs in pairs:
                ours.copy_(theirs)
    model._setup_learn(args.updates)
    queue: list[ReplayBufferSamples] = []
    model.replay_buffer.sample = lambda *_, **__: queue.pop(0)

    rng, n = np.random.default_rng(0), args.batch_size
    scale = float(model.action_space.high[0])  # Pendulum's bounds are ±2: SB3 stores actions / 2
    for update in range(args.updates):
        obs, next_obs = rng.standard_normal((n, 3)), rng.standard_normal((n, 3))
        action, reward = rng.uniform(-scale, scale, (n, 1)), rng.standard_normal(n) * 3 - 5
        terminal = rng.random(n) < 0.05
        torch.manual_seed(update)
        agent.learn({"obs": obs, "next_obs": next_obs, "action": action, "reward": reward,
                     "discount": 0.99 * ~terminal})
        queue.append(ReplayBufferSamples(tensor(obs), tensor(action / scale), tensor(next_obs),
                                         tensor(terminal)[:, None], tensor(reward)[:, None], None))
        torch.manual_seed(update)
        model.train(gradient_steps=1, batch_size=n)

    print(f"SAC update, ours vs SB3 {stable_baselines3.__version__} after {args.updates} updates "
          f"(batch {n}, {str(dtype).removeprefix('torch.')}), largest parameter difference:")
    for name, pairs in _pairs(agent, model.policy).items():
        gap = max(float((ours - theirs).detach().abs().max()) for ours, theirs in pairs)
        print(f"  {name:8}: {gap:.3g}")
    print(f"  log α   : {abs(agent.log_alpha.item() - model.log_ent_coef.item()):.3g} "
          f"(ours {agent.log_alpha.item():.6f}, SB3 {model.log_ent_coef.item():.6f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
