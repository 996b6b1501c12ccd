"""SAC (Haarnoja et al. 2018): a tanh-squashed Gaussian policy, twin Q critics with Polyak-averaged
targets, and an entropy bonus whose weight tunes itself to a target entropy."""

from __future__ import annotations

import copy
import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ML.agents.base import BaseAgent, Bundle, action_bounds
from ML.blocks.architectures import MLP
from ML.blocks.network import NumpyMLP, build_optimizer, config_device
from ML.errors import UserError

LOG_STD_MIN, LOG_STD_MAX = -20.0, 2.0  # SB3's and Tianshou's clamp of the policy's log std
_LOG_2PI = math.log(2 * math.pi)


class SACAgent(BaseAgent):
    """Soft actor-critic for continuous actions from state vectors, as Stable-Baselines3's ``SAC``.

    The actor is an MLP (``hidden_dim`` × ``depth``, ReLU) to the mean and log std (clamped to [-20, 2]) of a
    Gaussian whose samples are squashed by tanh into [-1, 1] and rescaled to the action bounds; its
    log-probability carries the tanh correction ``-Σ log(1 - a² + 1e-6)``. Two critics, MLPs of the same size
    on [observation, action], regress on ``r + γ (1 - terminal) (min target Q(s', a') - α log π(a'|s'))``
    (loss ½ Σ MSE) with a' sampled from the current policy; their targets follow them by Polyak averaging at
    ``tau`` after every update. The actor minimises ``α log π(a|s) - min Q(s, a)``. With ``auto_entropy`` the
    weight α = exp(log α) (starting at ``ent_coef``) is learned towards the target entropy −dim(A) by SB3's
    loss ``-log α · (log π + target)``; otherwise α is fixed at ``ent_coef``. Every update is SB3's: α (its
    Adam step taken with the critics': the same per-parameter steps), then the critics, then the actor through
    the updated critics (their weights detached: no weight gradients computed), then the targets. Networks
    keep PyTorch's default initialisation.

    Args:
        spec, settings: given by the engine (``settings.network.lr``: every optimiser's learning rate unless
            ``alpha_lr`` is set for α's; ``settings.batch_size``: the batch).
        gamma, tau: discount; Polyak rate of the target critics.
        learn_start: environment steps of uniformly random actions before the first update (SB3's
            ``learning_starts``, Tianshou's ``start_timesteps``).
        update_every, updates_per_step: learn every this many environment steps, this many updates each time.
        hidden_dim, depth: the actor's and critics' MLPs.
        auto_entropy, ent_coef: learn α (starting at ``ent_coef``), or keep it at ``ent_coef``.
        alpha_lr: α's learning rate (0: ``settings.network.lr``).
        target_every: Polyak-update the target critics after every this many updates (pytorch_sac: 2).
    """

    reads = frozenset({"Optim"})  # its networks are its own MLPs: no Eyes/Trunk/Model parts

    def __init__(self, spec: Any, settings: Bundle, gamma: float = 0.99, tau: float = 0.005, learn_start: int = 100,
                 update_every: int = 1, updates_per_step: int = 1, hidden_dim: int = 256, depth: int = 2,
                 auto_entropy: bool = True, ent_coef: float = 1.0, alpha_lr: float = 0.0, target_every: int = 1):
        super().__init__()
        if spec.discrete or not spec.action_shape:
            raise UserError(f"SACAgent needs continuous actions but {spec.task} has discrete ones; "
                            "pick a continuous task (Pendulum-v1, MuJoCo, DMC) or Agent=PPOAgent / DQNAgent")
        if len(spec.obs_shape) != 1:
            raise UserError(f"SACAgent learns from state vectors, {spec.task} gives observations of shape "
                            f"{list(spec.obs_shape)}; use env.pixels=false (or DrQV2Agent from pixels)")
        if ent_coef <= 0:
            raise UserError(f"SACAgent: ent_coef must be > 0 (got {ent_coef})")
        self.gamma, self.tau = float(gamma), float(tau)
        self.learn_start, self.update_every = int(learn_start), max(int(update_every), 1)
        self.updates_per_step = max(int(updates_per_step), 1)
        self.target_every = max(int(target_every), 1)
        net, run = settings.network, settings.run
        self.batch_size = settings.batch_size
        self.device = config_device(settings.accel)
        obs_dim = int(spec.obs_shape[0])
        self.action_shape = tuple(int(s) for s in spec.action_shape)
        self.action_dim = math.prod(self.action_shape)
        low, high = action_bounds(spec, "SACAgent")
        self._scale, self._offset = (high - low) / 2.0, (high + low) / 2.0  # [-1, 1] → [low, high]
        self.target_entropy = -float(self.action_dim)

        # one head to [mean, log std]: the same function and initialisation as SB3's two heads on one trunk
        self.actor = MLP((obs_dim,), (2 * self.action_dim,), hidden_dim, depth, "ReLU")
        self.critic1 = MLP((obs_dim + self.action_dim,), (1,), hidden_dim, depth, "ReLU")
        self.critic2 = MLP((obs_dim + self.action_dim,), (1,), hidden_dim, depth, "ReLU")
        self.critic1_target, self.critic2_target = copy.deepcopy(self.critic1), copy.deepcopy(self.critic2)
        self.critic1_target.requires_grad_(False)
        self.critic2_target.requires_grad_(False)
        self.log_alpha = torch.nn.Parameter(torch.tensor(math.log(ent_coef)), requires_grad=bool(auto_entropy))
        self.to(self.device)
        self.actor_opt = build_optimizer(net, self.actor.parameters())
        self._critic_params = [*self.critic1.parameters(), *self.critic2.parameters()]
        self._target_params = [*self.critic1_target.parameters(), *self.critic2_target.parameters()]
        self.critic_opt = build_optimizer(net, self._critic_params)
        if auto_entropy:  # α steps with the critics: Adam is per parameter, so the same steps as its own Adam
            self.critic_opt.add_param_group({"params": [self.log_alpha], "lr": float(alpha_lr) or float(net.lr)})
        self.auto_entropy = bool(auto_entropy)
        # the critics' Linear layers, for the actor loss's pass through weights it must not train
        self._critic_layers = [[m for m in c.modules() if isinstance(m, torch.nn.Linear)]
                               for c in (self.critic1, self.critic2)]
        self.rng = np.random.default_rng(int(run.seed))
        self._actor_np = NumpyMLP.of(self.actor)  # acting on one observation: numpy views of the weights
        self.updates = 0

    # -- acting -------------------------------------------------------------------------------------

    def _policy(self, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(mean, log std) for a batch of observations, in numpy."""
        obs = np.asarray(obs, np.float32)
        if self._actor_np is not None and len(obs) == 1:  # (a batch goes to torch: numpy's BLAS would spread
            out = self._actor_np(obs[0])[None]             # a few rows of 256-wide layers over every core)
        else:
            with torch.no_grad():
                out = self.actor(torch.from_numpy(obs).to(self.device)).cpu().numpy()
        mean, log_std = out[:, :self.action_dim], out[:, self.action_dim:]
        return mean, np.clip(log_std, LOG_STD_MIN, LOG_STD_MAX)

    def _to_env(self, action: np.ndarray) -> np.ndarray:
        return (action * self._scale + self._offset).astype(np.float32)

    def act_batch(self, obs: np.ndarray, step: int, eval_mode: bool = False) -> np.ndarray:
        """Actions for a batch of observations: tanh of the mean when ``eval_mode`` (deterministic evaluation),
        else a squashed sample (uniformly random before ``learn_start``)."""
        n = len(obs)
        if not eval_mode and step < self.learn_start:
            action = self.rng.uniform(-1.0, 1.0, (n, self.action_dim))
        else:
            mean, log_std = self._policy(obs)
            if eval_mode:
                action = np.tanh(mean)
            else:
                action = np.tanh(mean + np.exp(log_std) * self.rng.standard_normal(mean.shape))
        return self._to_env(action).reshape(n, *self.action_shape)

    def act(self, obs: np.ndarray, step: int, eval_mode: bool = False) -> np.ndarray:
        return self.act_batch(np.asarray(obs)[None], step, eval_mode)[0]

    # -- learning -----------------------------------------------------------------------------------

    def _sample(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """A squashed Gaussian action in [-1, 1] (reparameterised) and its log-probability."""
        out = self.actor(obs)
        mean, log_std = out[:, :self.action_dim], out[:, self.action_dim:].clamp(LOG_STD_MIN, LOG_STD_MAX)
        noise = torch.randn_like(mean)
        x = mean + log_std.exp() * noise
        action = torch.tanh(x)
        log_prob = (-0.5 * noise.square() - log_std - 0.5 * _LOG_2PI).sum(1)
        log_prob = log_prob - torch.log(1.0 - action.square() + 1e-6).sum(1)
        return action, log_prob

    def update(self, replay: Any, step: int) -> dict[str, float]:
        if step < self.learn_start or step % self.update_every or len(replay) < 1:
            return {}
        totals: dict[str, float] = {}
        for _ in range(self.updates_per_step):
            for key, value in self.learn(replay.sample(self.batch_size, 1, self.gamma)).items():
                totals[key] = totals.get(key, 0.0) + value / self.updates_per_step
        return totals

    def _tensor(self, x: Any) -> torch.Tensor:
        x = torch.from_numpy(x) if isinstance(x, np.ndarray) else torch.as_tensor(x)
        return x if x.dtype == torch.float32 and x.device == self.device else x.to(self.device, torch.float32)

    def learn(self, batch: dict[str, Any]) -> dict[str, float]:
        """One SAC update on a batch of transitions (``discount``: γ, or 0 after a terminal step)."""
        obs, next_obs = self._tensor(batch["obs"]), self._tensor(batch["next_obs"])
        action = ((self._tensor(batch["action"]).view(-1, self.action_dim) - self._offset) / self._scale)
        reward, discount = self._tensor(batch["reward"]).view(-1), self._tensor(batch["discount"]).view(-1)

        policy_action, log_prob = self._sample(obs)
        alpha = self.log_alpha.detach().exp()  # α before this update's step, for every loss (SB3's order)
        with torch.no_grad():
            next_action, next_log_prob = self._sample(next_obs)
            next_input = torch.cat([next_obs, next_action], 1)
            next_q = torch.min(self.critic1_target(next_input), self.critic2_target(next_input))[:, 0]
            target = reward + discount * (next_q - alpha * next_log_prob)
        q_input = torch.cat([obs, action], 1)
        q1, q2 = self.critic1(q_input)[:, 0], self.critic2(q_input)[:, 0]
        critic_loss = 0.5 * (F.mse_loss(q1, target) + F.mse_loss(q2, target))
        loss = critic_loss
        if self.auto_entropy:  # α's loss on its own parameter: one backward and one Adam step with the critics'
            alpha_loss = -(self.log_alpha * (log_prob.detach() + self.target_entropy)).mean()
            loss = critic_loss + alpha_loss
        self.critic_opt.zero_grad(set_to_none=True)
        loss.backward()
        self.critic_opt.step()

        # the actor, through the updated critics' weights detached: gradients reach the actions, no weight
        # gradient is computed (SB3 computes the critics' and drops them)
        pi_input = torch.cat([obs, policy_action], 1)
        q_pi = torch.min(self._frozen_q(0, pi_input), self._frozen_q(1, pi_input))
        actor_loss = (alpha * log_prob - q_pi).mean()
        self.actor_opt.zero_grad(set_to_none=True)
        actor_loss.backward()
        self.actor_opt.step()

        if self.updates % self.target_every == 0:
            with torch.no_grad():
                for target, param in zip(self._target_params, self._critic_params, strict=True):
                    target.lerp_(param, self.tau)  # SB3's polyak_update, one tensor at a time (public torch)
        self.updates += 1
        out = {"alpha_loss": float(alpha_loss.detach())} if self.auto_entropy else {}
        return {**out, "critic_loss": float(critic_loss.detach()), "actor_loss": float(actor_loss.detach()),
                "alpha": float(alpha),
                "q": float(q1.detach().mean()), "entropy": float(-log_prob.detach().mean())}

    def _frozen_q(self, k: int, x: torch.Tensor) -> torch.Tensor:
        """Critic ``k`` on ``x`` with its weights detached (its MLP: Linear layers with ReLU between)."""
        layers = self._critic_layers[k]
        for i, layer in enumerate(layers):
            x = F.linear(x, layer.weight.detach(), layer.bias.detach())
            x = F.relu(x) if i < len(layers) - 1 else x
        return x[:, 0]

    def train(self, mode: bool = True) -> SACAgent:
        super().train(mode)
        self.critic1_target.eval()
        self.critic2_target.eval()
        return self
