"""DrQ-v2 (Yarats et al. 2021): DDPG with n-step returns, twin critics and random-shift augmentation."""

from __future__ import annotations

import copy
import math
import re
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ML.accelerate import Accelerator
from ML.agents.base import BaseAgent, Bundle, action_bounds
from ML.blocks.network import NetworkSettings, build_aug, build_optimizer, config_device
from ML.blocks.vision import Encoder, orthogonal_init
from ML.errors import UserError
from ML.hyperparams import instantiate, output_shape, resolve

_LINEAR = re.compile(r"^\s*linear\(\s*([^,]+),\s*([^,]+),\s*([^,]+)\)\s*$")
_STEP_LINEAR = re.compile(r"^\s*step_linear\(\s*([^,]+),\s*([^,]+),\s*([^,]+),\s*([^,]+),\s*([^,]+)\)\s*$")


class Schedule:
    """DrQ-v2's schedules over agent steps: a constant ``0.2``, ``linear(init, final, duration)`` or
    ``step_linear(init, final1, duration1, final2, duration2)``. Picklable (plain numbers inside)."""

    def __init__(self, text: Any):
        self.text = str(text)
        self.points: list[tuple[float, float, float]] = []  # (start value, end value, duration) pieces
        try:
            self.points = [(float(text), float(text), 0.0)]
            return
        except (TypeError, ValueError):
            pass
        try:
            match = _LINEAR.match(self.text)
            if match:
                init, final, duration = (float(g) for g in match.groups())
                self.points = [(init, final, duration)]
                return
            match = _STEP_LINEAR.match(self.text)
            if match:
                init, final1, duration1, final2, duration2 = (float(g) for g in match.groups())
                self.points = [(init, final1, duration1), (final1, final2, duration2)]
                return
        except ValueError:
            pass
        raise UserError(f"cannot read schedule {self.text!r}; write a number, 'linear(1.0,0.1,500000)' or "
                        "'step_linear(1.0,0.5,100000,0.1,400000)'")

    def __call__(self, step: float) -> float:
        for start, end, duration in self.points:
            if duration <= 0:
                value = end
            else:
                mix = min(max(step / duration, 0.0), 1.0)
                value = (1.0 - mix) * start + mix * end
            if step <= duration:
                return value
            step -= duration
        return self.points[-1][1]

    def __repr__(self) -> str:
        return f"Schedule({self.text!r})"


def truncated_normal_sample(mean: torch.Tensor, std: float, clip: float | None = None) -> torch.Tensor:
    """DrQ-v2's ``TruncatedNormal.sample``: mean + (optionally clipped) noise, clamped into (-1, 1) with a
    straight-through gradient to ``mean``."""
    noise = torch.randn_like(mean) * std
    if clip is not None:
        noise = noise.clamp(-clip, clip)
    x = mean + noise
    eps = 1e-6
    return x - x.detach() + x.detach().clamp(-1.0 + eps, 1.0 - eps)


def _trunk(repr_dim: int, feature_dim: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(repr_dim, feature_dim), nn.LayerNorm(feature_dim), nn.Tanh())


def _mlp(in_dim: int, hidden_dim: int, out_dim: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(in_dim, hidden_dim), nn.ReLU(inplace=True),
                         nn.Linear(hidden_dim, hidden_dim), nn.ReLU(inplace=True),
                         nn.Linear(hidden_dim, out_dim))


class Actor(nn.Module):
    """Features → trunk → MLP → tanh: the action mean in [-1, 1]."""

    def __init__(self, repr_dim: int, action_dim: int, feature_dim: int, hidden_dim: int):
        super().__init__()
        self.trunk = _trunk(repr_dim, feature_dim)
        self.policy = _mlp(feature_dim, hidden_dim, action_dim)
        self.apply(orthogonal_init)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.policy(self.trunk(h)))


class Critic(nn.Module):
    """Features → trunk, then twin Q MLPs on [trunk features, action]."""

    def __init__(self, repr_dim: int, action_dim: int, feature_dim: int, hidden_dim: int):
        super().__init__()
        self.trunk = _trunk(repr_dim, feature_dim)
        self.q1 = _mlp(feature_dim + action_dim, hidden_dim, 1)
        self.q2 = _mlp(feature_dim + action_dim, hidden_dim, 1)
        self.apply(orthogonal_init)

    def forward(self, h: torch.Tensor, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        ha = torch.cat([self.trunk(h), action], dim=-1)
        return self.q1(ha), self.q2(ha)


def _is_default(named: Any, names: tuple[str, ...]) -> bool:
    return named is None or (isinstance(named, str) and named.strip() in names)


class DrQV2Agent(BaseAgent):
    """DrQ-v2 for continuous actions, from pixels or states.

    Pixels → ``Eyes`` (DrQ-v2's conv ``Encoder`` by default) → flat features shared by the actor and the
    critic. Each has its own trunk (Linear → LayerNorm → Tanh to ``feature_dim``); the actor's MLP gives the
    action mean (tanh), explored with a truncated normal of scheduled std; the critic's twin MLPs value
    [trunk features, action]. The critic regresses on the n-step target built from the smaller of the two
    target-critic values (target critic: Polyak averaging at ``critic_tau``; the encoder has no target copy),
    with the next action sampled at the scheduled std clipped to ``stddev_clip``. The actor maximises the
    smaller twin value on detached encoder features, so the encoder learns only through the critic.
    Observations and next observations are augmented with ``Aug`` (random shifts by default) on pixels.

    From states (``env.pixels=false``, classic control) the ``Eyes`` is ``Identity``: no encoder, no augmentation.
    Actions are produced in [-1, 1] and rescaled to the task's [action_low, action_high].
    The run's ``Model`` is not used: the actor and critic are DrQ-v2's (sized by ``hidden_dim``).

    Args:
        spec, settings: given by the engine (the task's shapes; the run's settings). ``settings.network.lr``
            is the learning rate of the encoder, actor and critic (``Optim``, Adam by default, with
            ``optim.*``), ``settings.batch_size`` the batch, ``settings.accel`` the device, ``Eyes``/``eyes``
            the encoder and ``Aug``/``aug`` the augmentation.
        feature_dim: width of the actor's and critic's trunks (LayerNorm + Tanh).
        hidden_dim: width of the actor's and critic's MLPs.
        critic_tau: Polyak rate of the target critic, applied after every update.
        n_step, gamma: n-step returns and the discount per agent step.
        update_every: learn once every this many agent steps...
        learn_start: ...from this agent step on (DrQ-v2: 4000 seed frames = 2000 steps at action repeat 2).
        num_expl_steps: agent steps of uniformly random actions at the start.
        stddev_schedule: the exploration std over agent steps, e.g. ``linear(1.0,0.1,500000)``.
        stddev_clip: clip of the target and actor-update noise.
        augment: augment observations with ``Aug`` (pixels only; states are never augmented).
    """

    reads = frozenset({"Eyes", "Aug", "Optim"})

    def __init__(self, spec: Any, settings: Bundle, feature_dim: int = 50, hidden_dim: int = 1024,
                 critic_tau: float = 0.01, n_step: int = 3, gamma: float = 0.99, update_every: int = 2,
                 learn_start: int = 2000, num_expl_steps: int = 2000,
                 stddev_schedule: Any = "linear(1.0,0.1,500000)", stddev_clip: float = 0.3,
                 augment: bool = True):
        super().__init__()
        if spec.discrete or not spec.action_shape:
            raise UserError(f"DrQV2Agent needs continuous actions but {spec.task} has discrete ones; "
                            "pick a continuous task (Env=DMC, Pendulum-v1) or Agent=DQNAgent")
        self.feature_dim, self.hidden_dim = int(feature_dim), int(hidden_dim)
        self.critic_tau, self.n_step, self.gamma = float(critic_tau), int(n_step), float(gamma)
        self.update_every = max(int(update_every), 1)
        self.learn_start, self.num_expl_steps = int(learn_start), int(num_expl_steps)
        self.stddev_schedule = Schedule(stddev_schedule)
        self.stddev_clip = float(stddev_clip)
        if self.n_step < 1 or not 0.0 <= self.gamma <= 1.0 or not 0.0 <= self.critic_tau <= 1.0:
            raise UserError(f"DrQV2Agent: n_step ≥ 1, 0 ≤ gamma ≤ 1 and 0 ≤ critic_tau ≤ 1 "
                            f"(got n_step={n_step}, gamma={gamma}, critic_tau={critic_tau})")
        if self.feature_dim < 1 or self.hidden_dim < 1:
            raise UserError(f"DrQV2Agent: feature_dim and hidden_dim must be ≥ 1 "
                            f"(got {feature_dim}, {hidden_dim})")
        self.batch_size = settings.batch_size
        net, accel = settings.network, settings.accel
        self.device = config_device(accel)

        obs_shape = tuple(int(s) for s in spec.obs_shape)
        self.pixels = len(obs_shape) == 3
        self.action_shape = tuple(int(s) for s in spec.action_shape)
        self.action_dim = math.prod(self.action_shape)
        low, high = action_bounds(spec, "DrQV2Agent")
        self.action_low, self.action_high = low, high
        self._scale, self._offset = (high - low) / 2.0, (high + low) / 2.0  # [-1, 1] → [low, high]

        self.encoder, self.repr_dim = self._build_eyes(net, settings.env.Env, obs_shape)
        self.aug = build_aug(net, obs_shape, "RandomShiftsAug") if augment and self.pixels else None  # states: none

        self.actor = Actor(self.repr_dim, self.action_dim, self.feature_dim, self.hidden_dim)
        self.critic = Critic(self.repr_dim, self.action_dim, self.feature_dim, self.hidden_dim)
        self.critic_target = copy.deepcopy(self.critic)
        self.critic_target.requires_grad_(False)
        self.to(self.device)
        self.accel = Accelerator(accel, self.device, self.encoder)  # accelerate=true: see _encode
        if self.accel.dtype is not None and self.accel.dtype is not torch.bfloat16:
            # fp16 would need a grad scaler across DrQ-v2's three optimisers: the encoder stays fp32 instead
            self.accel.decision.update(amp=None, grad_scaler=False, why="DrQ-v2: bf16 only (no fp16 scaler)")
            self.accel.dtype, self.accel.scaler = None, None

        encoder_params = [p for p in self.encoder.parameters() if p.requires_grad]
        self.encoder_opt = build_optimizer(net, encoder_params) if encoder_params else None
        self.actor_opt = build_optimizer(net, self.actor.parameters())
        self.critic_opt = build_optimizer(net, self.critic.parameters())
        self._critic_params = list(self.critic.parameters())
        self._target_params = list(self.critic_target.parameters())
        self.updates = 0
        self.train()

    # -- construction -------------------------------------------------------------------------------

    def _build_eyes(self, net: NetworkSettings, env: Any, obs_shape: tuple[int, ...]) -> tuple[nn.Module, int]:
        """``Eyes`` and its flat output size: the user's, or DrQ-v2's Encoder for pixels and Identity for
        states by default (``Eyes=Identity`` on pixels means the default, DrQ-v2's Encoder); ``env`` names the
        environment in the refusal of an image encoder on states."""
        eyes = net.Eyes
        args = dict(net.eyes or {})
        if _is_default(eyes, ("Identity",)) and not args:
            module: Any = Encoder(obs_shape) if self.pixels else nn.Flatten(1)
        else:
            if not self.pixels and resolve(eyes, "Eyes") is Encoder:
                raise UserError(f"Eyes={eyes} is an image encoder but {env} gives state vectors "
                                f"of shape {list(obs_shape)}; use Eyes=Identity (e.g. task=drqv2_states) or "
                                "env.pixels=true")
            module = instantiate(eyes, args, obs_shape, None, "Eyes")
            if not isinstance(module, nn.Module):
                raise UserError(f"Eyes={eyes} is not a torch module; name an nn.Module class such as Encoder")
        try:
            shape = output_shape(module, obs_shape)
        except (RuntimeError, ValueError) as e:
            raise UserError(f"Eyes fails on inputs of shape {list(obs_shape)}: {str(e).splitlines()[0]}; "
                            "fix Eyes or its arguments") from None
        if len(shape) != 1:
            module = nn.Sequential(module, nn.Flatten(1))
        return module, math.prod(shape)

    # -- acting -------------------------------------------------------------------------------------

    def stddev(self, step: int) -> float:
        """The exploration std at agent step ``step``."""
        return self.stddev_schedule(step)

    def _to_env(self, action: torch.Tensor) -> np.ndarray:
        out = action.cpu().numpy().reshape(self.action_shape).astype(np.float32)
        if self._scale != 1.0 or self._offset != 0.0:
            out = out * np.float32(self._scale) + np.float32(self._offset)
        return np.clip(out, self.action_low, self.action_high, out=out)

    def act(self, obs: np.ndarray, step: int, eval_mode: bool = False) -> np.ndarray:
        with torch.no_grad():
            if not eval_mode and step < self.num_expl_steps:
                return self._to_env(torch.empty(self.action_dim).uniform_(-1.0, 1.0))
            x = torch.as_tensor(np.asarray(obs), device=self.device).unsqueeze(0).float()
            mean = self.actor(self._encode(x))
            if eval_mode:
                return self._to_env(mean[0])
            return self._to_env(truncated_normal_sample(mean, self.stddev(step))[0])

    # -- learning -----------------------------------------------------------------------------------

    def update(self, replay: Any, step: int) -> dict[str, float]:
        if step < self.learn_start or step % self.update_every or len(replay) < 1:
            return {}
        return self.learn(replay.sample(self.batch_size, self.n_step, self.gamma), step)

    def _batch(self, batch: dict[str, Any]) -> tuple[torch.Tensor, ...]:
        def get(name: str) -> torch.Tensor:
            x = batch[name]
            x = torch.from_numpy(x) if isinstance(x, np.ndarray) else torch.as_tensor(x)
            return x.to(self.device, torch.float32)

        obs, next_obs = get("obs"), get("next_obs")
        action = get("action").view(-1, self.action_dim)
        action = ((action - self._offset) / self._scale).clamp(-1.0, 1.0)  # env units → [-1, 1]
        reward, discount = get("reward").view(-1, 1), get("discount").view(-1, 1)
        return obs, action, reward, discount, next_obs

    def _encode(self, obs: torch.Tensor) -> torch.Tensor:
        """The encoder's features in float32; with ``accelerate=true`` on hardware with native bf16 (a GPU,
        or a CPU with AMX/AVX512-BF16) the encoder runs under bf16 autocast in ``channels_last``, ~2x faster
        on such a CPU (benchmarks/drqv2.py), while the actor, critic and their losses stay float32."""
        if self.accel.dtype is None:
            return self.encoder(obs)
        with self.accel.autocast():
            return self.encoder(obs).float()

    def describe(self) -> dict[str, Any]:
        return self.accel.describe()

    def learn(self, batch: dict[str, Any], step: int) -> dict[str, float]:
        """One DrQ-v2 update (critic with encoder, then actor, then the target critic) on an n-step batch."""
        obs, action, reward, discount, next_obs = self._batch(batch)
        if self.aug is not None:
            obs, next_obs = self.aug(obs), self.aug(next_obs)
        h = self._encode(obs)
        with torch.no_grad():
            next_h = self._encode(next_obs)
        stddev = self.stddev(step)

        # critic (and encoder)
        with torch.no_grad():
            next_action = truncated_normal_sample(self.actor(next_h), stddev, self.stddev_clip)
            target_q1, target_q2 = self.critic_target(next_h, next_action)
            target_q = reward + discount * torch.min(target_q1, target_q2)
        q1, q2 = self.critic(h, action)
        critic_loss = F.mse_loss(q1, target_q) + F.mse_loss(q2, target_q)
        if self.encoder_opt is not None:
            self.encoder_opt.zero_grad(set_to_none=True)
        self.critic_opt.zero_grad(set_to_none=True)
        critic_loss.backward()
        self.critic_opt.step()
        if self.encoder_opt is not None:
            self.encoder_opt.step()

        # actor, on detached features; the critic only passes gradients through (none for its weights)
        h = h.detach()
        policy_action = truncated_normal_sample(self.actor(h), stddev, self.stddev_clip)
        self.critic.requires_grad_(False)
        try:
            actor_q1, actor_q2 = self.critic(h, policy_action)
            actor_loss = -torch.min(actor_q1, actor_q2).mean()
            self.actor_opt.zero_grad(set_to_none=True)
            actor_loss.backward()
        finally:
            self.critic.requires_grad_(True)
        self.actor_opt.step()

        # target ← lerp(target, critic, tau) in one call (torch's public EMA: a foreach lerp; built here, as a
        # closure it could not travel with a pickled agent)
        ema = torch.optim.swa_utils.get_ema_multi_avg_fn(1.0 - self.critic_tau)
        ema(self._target_params, self._critic_params, None)
        self.updates += 1
        return {"critic_loss": float(critic_loss.detach()), "actor_loss": float(actor_loss.detach()),
                "critic_q": float(q1.detach().mean()), "critic_target_q": float(target_q.mean()),
                "stddev": stddev}
