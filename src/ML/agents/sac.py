"""SAC (Haarnoja et al. 2018): a tanh-squashed Gaussian policy, twin Q critics with Polyak-averaged
targets, and an entropy bonus whose weight tunes itself to a target entropy."""

from __future__ import annotations

import copy
import math
from typing import Any

import numpy as np
import torch

from ML.agents.base import BaseAgent, Bundle, action_bounds
from ML.blocks.architectures import MLP
from ML.blocks.network import NumpyMLP, build_optimizer, config_device
from ML.blocks.relu_stack import ReluStack
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
        self._relu: dict[str, ReluStack] | None = None  # the networks written out, for learn()
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

    def _squash(self, out: torch.Tensor, noise: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(action in [-1, 1], its log-probability, log std) of the actor's ``out`` = [mean, raw log std] and
        ``noise`` (the reparameterised squashed Gaussian)."""
        mean, log_std = out[:, :self.action_dim], out[:, self.action_dim:].clamp(LOG_STD_MIN, LOG_STD_MAX)
        action = torch.tanh(mean + log_std.exp() * noise)
        log_prob = (-0.5 * noise.square() - log_std - 0.5 * _LOG_2PI).sum(1)
        log_prob -= torch.log(1.0 - action.square() + 1e-6).sum(1)
        return action, log_prob, log_std

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

    def _stacks(self) -> dict[str, ReluStack]:
        """The networks written out (``ML.blocks.relu_stack``); built on first use, as after loading agent.pt."""
        if self._relu is None:
            self._relu = {name: ReluStack(getattr(self, name)) for name in
                          ("actor", "critic1", "critic2", "critic1_target", "critic2_target")}
        for name in ("actor", "critic1", "critic2"):
            self._relu[name].bind_grads()
        return self._relu

    @torch.no_grad()
    def learn(self, batch: dict[str, Any]) -> dict[str, float]:
        """One SAC update on a batch of transitions (``discount``: γ, or 0 after a terminal step), its
        gradients written out (``ML.blocks.relu_stack``): the same as autograd's on these losses."""
        net = self._stacks()
        obs, next_obs = self._tensor(batch["obs"]), self._tensor(batch["next_obs"])
        action = ((self._tensor(batch["action"]).view(-1, self.action_dim) - self._offset) / self._scale)
        reward, discount = self._tensor(batch["reward"]).view(-1), self._tensor(batch["discount"]).view(-1)
        n, a = len(obs), self.action_dim

        # the policy on s (for the actor's loss) and s' (for the critics' targets) in one pass: the same weights
        both = net["actor"].forward(torch.cat([obs, next_obs]), "pi")
        out, noise = both[:n], torch.randn(n, a, device=self.device)
        policy_action, log_prob, log_std = self._squash(out, noise)
        alpha = self.log_alpha.exp()  # α before this update's step, for every loss (SB3's order)
        next_action, next_log_prob, _ = self._squash(both[n:], torch.randn(n, a, device=self.device))
        next_input = torch.cat([next_obs, next_action], 1)
        next_q = torch.min(net["critic1_target"].forward(next_input, "next"),
                           net["critic2_target"].forward(next_input, "next"))[:, 0]
        target = reward + discount * (next_q - alpha * next_log_prob)

        # the critics: loss ½ Σ MSE, so d/dq_k = (q_k - target) / n; α's loss -log α · (log π + target entropy)
        q_input = torch.cat([obs, action], 1)
        q1 = net["critic1"].forward(q_input, "q")[:, 0]
        q2 = net["critic2"].forward(q_input, "q")[:, 0]
        error1, error2 = q1 - target, q2 - target
        critic_loss = 0.5 * (error1.square().mean() + error2.square().mean())
        net["critic1"].weight_grads("q", (error1 / n)[:, None])
        net["critic2"].weight_grads("q", (error2 / n)[:, None])
        out_stats: dict[str, float] = {}
        if self.auto_entropy:  # one Adam step with the critics': Adam is per parameter, the same steps
            entropy_gap = log_prob + self.target_entropy
            self.log_alpha.grad = -entropy_gap.mean().reshape(())
            out_stats["alpha_loss"] = float(-(self.log_alpha * entropy_gap).mean())
        self.critic_opt.step()

        # the actor: α log π - min Q(s, π(s)) through the updated critics (only their input's gradient)
        pi_input = torch.cat([obs, policy_action], 1)
        q_pi1 = net["critic1"].forward(pi_input, "pi")[:, 0]
        q_pi2 = net["critic2"].forward(pi_input, "pi")[:, 0]
        actor_loss = (alpha * log_prob - torch.min(q_pi1, q_pi2)).mean()
        # min Q's gradient goes to the smaller critic of each row (the first on a tie, as SB3's min over dim 1):
        # each critic passes back only its own rows
        first = q_pi1 <= q_pi2
        grad_action = torch.empty(n, a, device=self.device)
        grad_min = torch.full((n, 1), -1.0 / n, device=self.device)
        for critic, rows in (("critic1", first.nonzero()[:, 0]), ("critic2", (~first).nonzero()[:, 0])):
            if len(rows):
                grad_action[rows] = net[critic].input_grad("pi", grad_min[:len(rows)], rows)[:, -a:]
        # log π's tanh correction -Σ log(1 - a² + 1e-6), then tanh, then x = mean + exp(log std) · noise
        grad_action += (alpha / n) * 2.0 * policy_action / (1.0 - policy_action.square() + 1e-6)
        grad_x = grad_action * (1.0 - policy_action.square())
        grad_log_std = grad_x * log_std.exp() * noise - alpha / n
        raw_log_std = out[:, a:]
        grad_log_std.masked_fill_((raw_log_std < LOG_STD_MIN) | (raw_log_std > LOG_STD_MAX), 0.0)
        net["actor"].weight_grads("pi", torch.cat([grad_x, grad_log_std], 1))
        self.actor_opt.step()

        if self.updates % self.target_every == 0:
            for target_param, param in zip(self._target_params, self._critic_params, strict=True):
                target_param.lerp_(param, self.tau)  # SB3's polyak_update, one tensor at a time (public torch)
        self.updates += 1
        return {**out_stats, "critic_loss": float(critic_loss), "actor_loss": float(actor_loss),
                "alpha": float(alpha), "q": float(q1.mean()), "entropy": float(-log_prob.mean())}

    def train(self, mode: bool = True) -> SACAgent:
        super().train(mode)
        self.critic1_target.eval()
        self.critic2_target.eval()
        return self
