"""PPO (Schulman et al. 2017): clipped surrogate on GAE advantages, from fresh rollouts of N envs.

As Stable-Baselines3's ``PPO`` and CleanRL's ``ppo.py`` / ``ppo_continuous_action.py`` implement it, with
Tianshou's MuJoCo options (return normalisation, advantages recomputed every epoch) for ``ppo_mujoco``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ML.agents.base import BaseAgent, Bundle, action_bounds
from ML.blocks.architectures import MLP
from ML.blocks.network import NumpyMLP, build_optimizer, config_device
from ML.blocks.optim import clip_grad_norm
from ML.blocks.running import RunningMeanStd
from ML.errors import UserError

_LOG_2PI = math.log(2 * math.pi)
#: a minibatch: observations, actions, old log-probabilities, old values, advantages, returns
Minibatch = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


def orthogonal_mlp(net: MLP, head_gain: float) -> MLP:
    """SB3's / CleanRL's ``layer_init``: orthogonal weights (gain √2 in hidden layers, ``head_gain`` in the
    last), zero biases."""
    linears = [m for m in net.modules() if isinstance(m, nn.Linear)]
    for i, layer in enumerate(linears):
        nn.init.orthogonal_(layer.weight, head_gain if i == len(linears) - 1 else math.sqrt(2))
        nn.init.zeros_(layer.bias)
    return net


class PPOAgent(BaseAgent):
    """Proximal policy optimisation for discrete (categorical) or continuous (diagonal Gaussian) actions.

    Separate actor and critic MLPs (``hidden_dim`` × ``depth``, ``activation``; orthogonal init, gains √2,
    ``policy_gain`` for the policy head, ``value_gain`` for the value head); a continuous policy has a state-independent
    log std (``log_std_init``) and samples in [-1, 1] units, clipped and rescaled to the action bounds for the
    env. Each rollout (``ML.collectors.rollout.Rollouts``: ``num_envs`` × ``n_steps``) gives GAE(``gamma``,
    ``gae_lambda``) advantages, truncated episodes bootstrapped from their last observation's value; then
    ``n_epochs`` passes over shuffled minibatches of ``settings.batch_size``: clipped surrogate (``clip_range``),
    value loss (squared error; clipped as CleanRL/Tianshou when ``value_clip`` > 0), entropy bonus
    (``ent_coef``), gradient norm clipped to ``max_grad_norm``, one Adam (``Optim``, ``lr``, ``optim.*``).

    Args:
        spec, settings: given by the engine (``settings.network``: Optim, lr; ``settings.run.train_steps``: the
            budget the annealing counts down; ``settings.batch_size``: the minibatch).
        num_envs, n_steps: the rollout's envs and vector steps (the driver reads them).
        anneal_lr, anneal_clip: scale ``lr`` / ``clip_range`` by the budget left after the rollout
            (``1 - env steps / train_steps``, SB3's linear schedules ``lin_*``).
        norm_adv: normalise advantages per minibatch (SB3, CleanRL; Tianshou's MuJoCo runs: off).
        obs_norm: normalise observations by running statistics updated on every training step, clipped to
            ±10 (SB3's ``VecNormalize``, CleanRL's wrappers, Tianshou's ``norm_obs``); evaluation uses them frozen.
        reward_norm: divide rewards by the running std of the discounted return, clipped to ±10 (SB3's
            ``VecNormalize``, CleanRL's ``NormalizeReward``).
        return_norm: the critic learns returns divided by the running std of returns (Tianshou's ``rew_norm``).
        recompute_adv: recompute values and advantages before every epoch (Tianshou; SB3/CleanRL: once).
    """

    reads = frozenset({"Optim"})  # its networks are its own MLPs: no Eyes/Trunk/Model parts
    discounted: torch.Tensor  # reward_norm: the running discounted return per env (a buffer)

    on_policy = True  # ML.drivers.make_driver: fresh rollouts (OnPolicy), no replay

    def __init__(self, spec: Any, settings: Bundle, num_envs: int = 8, n_steps: int = 2048, n_epochs: int = 10,
                 gamma: float = 0.99, gae_lambda: float = 0.95, clip_range: float = 0.2, value_clip: float = 0.0,
                 anneal_lr: bool = False, anneal_clip: bool = False, norm_adv: bool = True,
                 ent_coef: float = 0.0, vf_coef: float = 0.5, max_grad_norm: float = 0.5, hidden_dim: int = 64,
                 depth: int = 2, activation: str = "Tanh", log_std_init: float = 0.0, policy_gain: float = 0.01,
                 value_gain: float = 1.0,
                 obs_norm: bool = False, reward_norm: bool = False, return_norm: bool = False,
                 recompute_adv: bool = False):
        super().__init__()
        if len(spec.obs_shape) != 1:
            raise UserError(f"PPOAgent learns from state vectors, {spec.task} gives observations of shape "
                            f"{list(spec.obs_shape)}; pick a state-based task (Classic, MuJoCo, DMC env.pixels=false)")
        if not 0.0 <= gae_lambda <= 1.0 or clip_range <= 0 or n_epochs < 1:
            raise UserError(f"PPOAgent: 0 ≤ gae_lambda ≤ 1, clip_range > 0 and n_epochs ≥ 1 (got gae_lambda="
                            f"{gae_lambda}, clip_range={clip_range}, n_epochs={n_epochs})")
        self.num_envs, self.n_steps, self.n_epochs = int(num_envs), int(n_steps), int(n_epochs)
        self.gamma, self.gae_lambda = float(gamma), float(gae_lambda)
        self.clip_range, self.value_clip = float(clip_range), float(value_clip)
        self.anneal_lr, self.anneal_clip, self.norm_adv = bool(anneal_lr), bool(anneal_clip), bool(norm_adv)
        self.ent_coef, self.vf_coef, self.max_grad_norm = float(ent_coef), float(vf_coef), float(max_grad_norm)
        self.reward_norm, self.return_norm = bool(reward_norm), bool(return_norm)
        self.recompute_adv = bool(recompute_adv)
        net, run = settings.network, settings.run
        self.batch_size = settings.batch_size
        self.lr, self.total = float(net.lr), int(run.train_steps)
        self.device = config_device(settings.accel)
        self.discrete = bool(spec.discrete)
        obs_dim = int(spec.obs_shape[0])
        if self.discrete:
            self.action_dim = int(spec.num_actions)
        else:
            self.action_dim = math.prod(spec.action_shape)
            low, high = action_bounds(spec, "PPOAgent")
            self._scale, self._offset = (high - low) / 2.0, (high + low) / 2.0  # [-1, 1] → [low, high]
            self.log_std = nn.Parameter(torch.full((self.action_dim,), float(log_std_init)))
        self.actor = orthogonal_mlp(MLP((obs_dim,), (self.action_dim,), hidden_dim, depth, activation),
                                    float(policy_gain))
        self.critic = orthogonal_mlp(MLP((obs_dim,), (1,), hidden_dim, depth, activation), float(value_gain))
        self.obs_rms = RunningMeanStd((obs_dim,)) if obs_norm else None
        self.ret_rms = RunningMeanStd((), epsilon=0.0) if return_norm else None  # Tianshou: count from 0
        if reward_norm:  # SB3's VecNormalize: a running discounted return per env, and its statistics
            self.rew_rms = RunningMeanStd(())
            self.register_buffer("discounted", torch.zeros(self.num_envs, dtype=torch.float64))
        self.to(self.device)
        self.params = [p for p in self.parameters() if p.requires_grad]
        self.optim = build_optimizer(net, self.params)
        self.rng = np.random.default_rng(int(run.seed))
        self._actor_np = NumpyMLP.of(self.actor)  # acting on a vector env's few observations: numpy views
        self._critic_np = NumpyMLP.of(self.critic)
        self.updates = 0

    # -- acting -------------------------------------------------------------------------------------

    def _obs(self, obs: np.ndarray, update: bool = False) -> np.ndarray:
        obs = np.asarray(obs, np.float32)
        if self.obs_rms is None:
            return obs
        if update:
            self.obs_rms.update(obs)
        return self.obs_rms.normalize(obs)

    def _forward(self, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(policy outputs, values) of a batch of (normalised) observations, in numpy."""
        if self._actor_np is not None and self._critic_np is not None:
            return self._actor_np.batch(obs), self._critic_np.batch(obs)[:, 0]
        with torch.no_grad():
            x = torch.from_numpy(obs).to(self.device)
            return self.actor(x).cpu().numpy(), self.critic(x)[:, 0].cpu().numpy()

    def _to_env(self, action: np.ndarray) -> np.ndarray:
        """[-1, 1] units → the env's bounds, clipped (Tianshou's ``action_bound_method='clip'``)."""
        return (np.clip(action, -1.0, 1.0) * self._scale + self._offset).astype(np.float32)

    def explore(self, obs: np.ndarray, step: int) -> dict[str, np.ndarray]:
        """A training step's actions for a vector env's observations, with what the update needs."""
        obs = self._obs(obs, update=True)
        out, value = self._forward(obs)
        if self.discrete:
            logits = out - out.max(axis=1, keepdims=True)
            log_p = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
            gumbel = -np.log(-np.log(self.rng.random(log_p.shape)))
            action = (log_p + gumbel).argmax(axis=1)
            log_prob = log_p[np.arange(len(action)), action]
            return {"obs": obs, "action": action, "log_prob": log_prob.astype(np.float32),
                    "value": value.astype(np.float32)}
        log_std = self.log_std.detach().cpu().numpy()
        noise = self.rng.standard_normal(out.shape)
        action = (out + np.exp(log_std) * noise).astype(np.float32)
        log_prob = (-0.5 * noise**2 - log_std - 0.5 * _LOG_2PI).sum(axis=1)
        return {"obs": obs, "action": action, "env_action": self._to_env(action),
                "log_prob": log_prob.astype(np.float32), "value": value.astype(np.float32)}

    def act_batch(self, obs: np.ndarray, step: int, eval_mode: bool = False) -> np.ndarray:
        """Deterministic actions (the most likely; the Gaussian's mean) for a batch of observations."""
        out, _ = self._forward(self._obs(obs))
        return out.argmax(axis=1) if self.discrete else self._to_env(out)

    def act(self, obs: np.ndarray, step: int, eval_mode: bool = False) -> Any:
        action = self.act_batch(np.asarray(obs)[None], step, eval_mode)[0]
        return int(action) if self.discrete else action

    # -- learning -----------------------------------------------------------------------------------

    def _values(self, obs: np.ndarray) -> np.ndarray:
        """The critic's values (in return units: un-normalised with ``return_norm``) of observations [..., obs]."""
        flat = obs.reshape(-1, obs.shape[-1])
        value = self._forward(flat)[1] if len(flat) else np.zeros(0, np.float32)
        if self.ret_rms is not None:
            value = value * self.ret_rms.std()
        return value.reshape(obs.shape[:-1])

    def _scale_rewards(self, reward: np.ndarray, done: np.ndarray) -> np.ndarray:
        """SB3's ``VecNormalize`` reward scaling, step by step through the rollout."""
        discounted = self.discounted.numpy()
        out = np.empty_like(reward)
        for t in range(len(reward)):
            discounted[:] = discounted * self.gamma + reward[t]
            self.rew_rms.update(discounted)
            out[t] = np.clip(reward[t] / self.rew_rms.std(), -10.0, 10.0)
            discounted[done[t]] = 0.0
        return out

    def _advantages(self, rollout: dict[str, np.ndarray], reward: np.ndarray,
                    fresh: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """GAE advantages and return targets [T, N]; a truncated episode bootstraps from its final observation.
        ``fresh``: the critic values the rollout's observations again (else the values it had when acting)."""
        terminated, truncated = rollout["terminated"], rollout["truncated"]
        if fresh:
            values = self._values(rollout["obs"])
        else:
            values = rollout["value"] * (self.ret_rms.std() if self.ret_rms is not None else 1.0)
        last = self._values(self._obs(rollout["last_obs"]))
        final = np.zeros_like(values)
        if truncated.any():
            final[truncated] = self._values(self._obs(rollout["final_obs"][truncated]))
        done = terminated | truncated
        advantages = np.zeros_like(values)
        running = np.zeros(values.shape[1], np.float32)
        for t in reversed(range(len(values))):
            following = last if t == len(values) - 1 else values[t + 1]
            following = np.where(done[t], final[t], following)  # 0 after a terminal step
            delta = reward[t] + self.gamma * following - values[t]
            running = delta + self.gamma * self.gae_lambda * ~done[t] * running
            advantages[t] = running
        returns = advantages + values
        if self.ret_rms is not None:  # Tianshou: the critic learns returns / std, then the statistics move
            targets = returns / self.ret_rms.std()
            self.ret_rms.update(returns.reshape(-1))
            return advantages, targets
        return advantages, returns

    def _log_prob(self, out: torch.Tensor, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(log-probability of ``action``, entropy) under the policy outputs ``out``."""
        if self.discrete:
            log_p = F.log_softmax(out, dim=1)
            return log_p.gather(1, action.view(-1, 1)).squeeze(1), -(log_p.exp() * log_p).sum(1)
        log_std = self.log_std
        z = (action - out) * torch.exp(-log_std)
        log_prob = (-0.5 * z.square() - log_std - 0.5 * _LOG_2PI).sum(1)
        return log_prob, (log_std + 0.5 * (1.0 + _LOG_2PI)).sum().expand(len(out))

    def update(self, rollout: dict[str, np.ndarray], step: int) -> dict[str, float]:
        """``n_epochs`` passes of minibatch updates on one rollout (its last vector step was at ``step``)."""
        remaining = max(1.0 - (step + self.num_envs) / max(self.total, 1), 0.0)  # SB3: after the rollout
        lr = self.lr * remaining if self.anneal_lr else self.lr
        clip = self.clip_range * remaining if self.anneal_clip else self.clip_range
        for group in self.optim.param_groups:
            group["lr"] = lr
        reward = rollout["reward"]
        if self.reward_norm:
            reward = self._scale_rewards(reward, rollout["terminated"] | rollout["truncated"])
        size = reward.size
        obs = torch.from_numpy(rollout["obs"].reshape(size, -1)).to(self.device)
        action = torch.from_numpy(rollout["action"].reshape(size, *rollout["action"].shape[2:])).to(self.device)
        old_log_prob = torch.from_numpy(rollout["log_prob"].reshape(size)).to(self.device)
        old_value = torch.from_numpy(rollout["value"].reshape(size)).to(self.device)
        losses: dict[str, list[torch.Tensor]] = {}
        diagnostics: dict[str, torch.Tensor] = {}
        for epoch in range(self.n_epochs):
            if epoch == 0 or self.recompute_adv:
                advantages, returns = self._advantages(rollout, reward, fresh=epoch > 0)
                adv = torch.from_numpy(advantages.reshape(size).astype(np.float32)).to(self.device)
                ret = torch.from_numpy(returns.reshape(size).astype(np.float32)).to(self.device)
            if self.batch_size >= size:  # one minibatch of everything: its order changes nothing
                batches: Iterable[Minibatch] = [(obs, action, old_log_prob, old_value, adv, ret)]
            else:
                order = torch.from_numpy(self.rng.permutation(size)).to(self.device)
                batches = ((obs[i], action[i], old_log_prob[i], old_value[i], adv[i], ret[i])
                           for i in order.split(self.batch_size))
            for batch in batches:
                last = epoch == self.n_epochs - 1
                for key, value in self._learn(*batch, clip, diagnose=last).items():
                    if key in ("approx_kl", "clip_fraction"):
                        diagnostics.setdefault(key, value)  # the last epoch's first minibatch
                    else:
                        losses.setdefault(key, []).append(value)
        self.updates += 1
        return {**{k: float(torch.stack(v).mean()) for k, v in losses.items()},
                **{k: float(v) for k, v in diagnostics.items()}, "lr": lr, "clip_range": clip}

    def _learn(self, obs: torch.Tensor, action: torch.Tensor, old_log_prob: torch.Tensor, old_value: torch.Tensor,
               adv: torch.Tensor, ret: torch.Tensor, clip: float, diagnose: bool = False) -> dict[str, torch.Tensor]:
        """One minibatch's gradient step; its losses (and, ``diagnose``, the approximate KL and clip fraction)."""
        log_prob, entropy = self._log_prob(self.actor(obs), action)
        if self.norm_adv and len(adv) > 1:
            adv = (adv - adv.mean()) / (adv.std() + 1e-8)
        log_ratio = log_prob - old_log_prob
        ratio = log_ratio.exp()
        policy_loss = -torch.min(adv * ratio, adv * ratio.clamp(1.0 - clip, 1.0 + clip)).mean()
        value = self.critic(obs)[:, 0]
        if self.value_clip > 0:
            clipped = old_value + (value - old_value).clamp(-self.value_clip, self.value_clip)
            value_loss = torch.max((value - ret).square(), (clipped - ret).square()).mean()
        else:
            value_loss = F.mse_loss(value, ret)
        entropy = entropy.mean()
        loss = policy_loss + self.vf_coef * value_loss - self.ent_coef * entropy
        self.optim.zero_grad(set_to_none=True)
        loss.backward()
        if self.max_grad_norm > 0:
            clip_grad_norm(self.params, self.max_grad_norm)
        self.optim.step()
        out = {"policy_loss": policy_loss.detach(), "value_loss": value_loss.detach(), "entropy": entropy.detach()}
        if diagnose:
            with torch.no_grad():
                out["approx_kl"] = ((ratio - 1.0) - log_ratio).mean()  # CleanRL's / SB3's k3 estimator
                out["clip_fraction"] = ((ratio - 1.0).abs() > clip).float().mean()
        return out
