"""DQN for discrete actions: double Q-learning, n-step returns, a target network, Huber loss."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ML.agents.base import BaseAgent, Bundle
from ML.blocks.network import (
    NetworkSettings,
    NumpyMLP,
    build_aug,
    build_network,
    build_optimizer,
    build_scheduler,
    config_device,
)
from ML.blocks.optim import clip_grad_norm
from ML.blocks.together import PerTask
from ML.errors import UserError
from ML.hyperparams import instantiate, output_shape


class DQNAgent(BaseAgent):
    """Deep Q-learning (Mnih et al. 2015) with double Q (van Hasselt et al. 2016) and n-step returns.

    The Q network is the run's ``Eyes → Pool → Trunk → Model`` (default ``Identity → MLP``) from observation
    to one value per action; the optimiser is the run's ``Optim`` with ``lr`` and ``optim.*`` (fused when it
    can be), its learning rate scheduled by ``Scheduler`` when set (stepped per update).

    From pixels (``Eyes=NatureCNN`` in ``dqn_atari``, ``Model=FullRainbowNetwork`` in ``atari100k``)
    observations stay uint8 in the replay and on their way to the device, and become floats there (the
    networks divide by 255). With ``Aug`` set (``Aug=DrQAtariAug``, as DrQ(ε) on Atari-100k) image
    observations and next observations are augmented in updates only, each independently; acting and
    evaluation see the raw frames.

    Args:
        spec, settings: given by the engine (the task's shapes; the run's settings, ``ML.agents.base.Bundle``).
        gamma: discount per step.
        n_step: steps summed into each return before bootstrapping from the target network.
        double: pick the next action with the online network, value it with the target network.
        target_update: copy the online network into the target every this many gradient updates
            (used when ``tau`` is 0; 0 or 1 copies after every update).
        tau: Polyak averaging rate applied after every gradient update (0: hard copies instead).
        learn_start: environment steps before learning starts.
        update_every: learn every this many environment steps...
        updates_per_step: ...with this many gradient updates each time.
        eps_start, eps_end, eps_decay_steps: epsilon-greedy exploration, linear in environment steps.
        eps_hold_steps: epsilon stays eps_start for this many steps before its decay starts (dopamine's
            ``linearly_decaying_epsilon`` warm-up: DrQ(ε) holds 1.0 through the steps before learning).
        eval_eps: epsilon when evaluating (0: greedy).
        huber: Huber (smooth L1) loss; false: squared error.
        grad_clip: clip the gradient's norm to this (0: no clipping).
        dueling: a dueling head (Wang et al. 2016) around any network: the Model is the advantage stream
            and a second Model of the same kind, to one output, the value stream; Q = V + A − mean(A).
            (``FullRainbowNetwork`` has its own, dopamine's: one shared layer, then the two heads.)
        reward_clip: clip every reward to [-reward_clip, reward_clip] before n-step sums (0: raw rewards;
            1 for Atari, as DQN).
        augment: apply the run's ``Aug`` (when set) to image observations in updates.
    """

    reads = frozenset({"Eyes", "Pool", "Trunk", "Model", "Aug", "Optim", "Scheduler"})

    def __init__(self, spec: Any, settings: Bundle, gamma: float = 0.99, n_step: int = 3, double: bool = True,
                 target_update: int = 500, tau: float = 0.0, learn_start: int = 1000, update_every: int = 1,
                 updates_per_step: int = 1, eps_start: float = 1.0, eps_end: float = 0.05,
                 eps_decay_steps: int = 10000, eval_eps: float = 0.0, huber: bool = True,
                 grad_clip: float = 10.0, reward_clip: float = 0.0, augment: bool = True,
                 eps_hold_steps: int = 0, dueling: bool = False):
        super().__init__()
        if not spec.discrete or not spec.num_actions:
            raise UserError(f"DQNAgent needs discrete actions but {spec.task} has continuous ones "
                            f"(shape {list(spec.action_shape or [])}); pick a discrete task or another Agent")
        self.num_actions = int(spec.num_actions)
        self.gamma, self.n_step, self.double_q = float(gamma), int(n_step), bool(double)
        self.target_update, self.tau = int(target_update), float(tau)
        self.learn_start, self.update_every = int(learn_start), max(int(update_every), 1)
        self.updates_per_step = max(int(updates_per_step), 1)
        self.eps_start, self.eps_end = float(eps_start), float(eps_end)
        self.eps_decay_steps = max(int(eps_decay_steps), 0)
        self.eps_hold_steps = max(int(eps_hold_steps), 0)
        self.eval_eps, self.huber, self.grad_clip = float(eval_eps), bool(huber), float(grad_clip)
        self.reward_clip = float(reward_clip)
        if self.n_step < 1 or not 0.0 <= self.gamma <= 1.0 or not 0.0 <= self.tau <= 1.0:
            raise UserError(f"DQNAgent: n_step ≥ 1, 0 ≤ gamma ≤ 1 and 0 ≤ tau ≤ 1 "
                            f"(got n_step={n_step}, gamma={gamma}, tau={tau})")
        self.batch_size = settings.batch_size
        net, run = settings.network, settings.run
        self.device = config_device(settings.accel)
        self.tasks = spec.info.get("tasks")  # several tasks together (ML.drivers.together): obs[0] says which
        if self.tasks:
            if dueling:
                raise UserError("DQNAgent: dueling=true is not supported with several tasks; drop agent.dueling")
            width = int((net.model or {}).get("hidden_dim") or 64)
            self.q: Any = PerTask(net, self.tasks, width)
        else:
            self.q = build_network(net.body(), tuple(spec.obs_shape), (self.num_actions,))
        if dueling:
            self.q = Dueling(self.q, net, tuple(spec.obs_shape))
        self.q = self.q.to(self.device)
        self.target = copy.deepcopy(self.q)
        self.target.requires_grad_(False)
        self.target_params = list(self.target.parameters())
        self.target.eval()
        self.params = list(self.q.parameters())  # listed once: walking the modules every update costs time
        self._act_numpy = NumpyMLP.of(self.q)  # acting on one observation: numpy views of the CPU MLP's weights
        # several tasks: each task's own path (adapter, body, head) in numpy, on the observation without its tag
        self._act_tasks = [NumpyMLP.of(self.q.path(i)) for i in range(len(self.tasks))] if self.tasks else []
        self.optim = build_optimizer(net, self.params)
        updates = (int(run.train_steps) - self.learn_start) // self.update_every * self.updates_per_step
        self.scheduler = build_scheduler(net, self.optim, updates)  # T_max: the run's updates
        self.aug = build_aug(net, tuple(spec.obs_shape)) if augment else None
        self.rng = np.random.default_rng(int(run.seed))
        self.updates = 0

    def epsilon(self, step: int) -> float:
        """Exploration rate at environment step ``step``: eps_start for eps_hold_steps, then linear to eps_end."""
        step -= self.eps_hold_steps
        if step < 0:
            return self.eps_start
        if self.eps_decay_steps == 0 or step >= self.eps_decay_steps:
            return self.eps_end
        return self.eps_start + (self.eps_end - self.eps_start) * step / self.eps_decay_steps

    def _tensor(self, x: Any, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """``x`` as a tensor of ``dtype`` on the agent's device (no copy when it already is one)."""
        x = torch.from_numpy(x) if isinstance(x, np.ndarray) else torch.as_tensor(x)
        return x if x.dtype == dtype and x.device == self.device else x.to(self.device, dtype)

    def _input(self, x: Any) -> torch.Tensor:
        """Observations as float32 on the device; uint8 pixels travel as uint8 and are converted there."""
        x = torch.from_numpy(x) if isinstance(x, np.ndarray) else torch.as_tensor(x)
        if x.device != self.device:
            x = x.to(self.device, non_blocking=True)
        return x if x.dtype == torch.float32 else x.float()

    def act(self, obs: np.ndarray, step: int, eval_mode: bool = False) -> int:
        eps = self.eval_eps if eval_mode else self.epsilon(step)
        if eps > 0 and self.rng.random() < eps:
            count = self.tasks[int(obs[0])]["num_actions"] if self.tasks else self.num_actions
            return int(self.rng.integers(count))
        fast = self._act_tasks[int(obs[0])] if self._act_tasks and isinstance(obs, np.ndarray) else None
        if fast is not None:
            return int(fast(obs[1:1 + self.q.dims[int(obs[0])]]).argmax())
        if self._act_numpy is not None and isinstance(obs, np.ndarray):
            return int(self._act_numpy(obs).argmax())
        with torch.no_grad():
            return int(self.q(self._input(obs).unsqueeze(0)).argmax(1).item())

    def act_batch(self, obs: np.ndarray, step: int, eval_mode: bool = False) -> np.ndarray:
        """Actions for a batch of observations (a vector env's), one forward pass for all of them."""
        with torch.no_grad():
            actions = self.q(self._input(obs)).argmax(1).cpu().numpy()
        eps = self.eval_eps if eval_mode else self.epsilon(step)
        if eps > 0:
            explore = self.rng.random(len(actions)) < eps
            high = (np.array([t["num_actions"] for t in self.tasks])[np.asarray(obs)[:, 0].astype(np.int64)]
                    if self.tasks else self.num_actions)
            actions = np.where(explore, self.rng.integers(high, size=len(actions)), actions)
        return actions

    def update(self, replay: Any, step: int) -> dict[str, float]:
        if step < self.learn_start or step % self.update_every or len(replay) < self.batch_size:
            return {}
        losses, qs = 0.0, 0.0
        for _ in range(self.updates_per_step):
            if self.reward_clip > 0:
                batch = replay.sample(self.batch_size, self.n_step, self.gamma, clip=self.reward_clip)
            else:
                batch = replay.sample(self.batch_size, self.n_step, self.gamma)
            loss, q = self.learn(batch)
            losses, qs = losses + loss, qs + q
        return {"loss": losses / self.updates_per_step, "q": qs / self.updates_per_step,
                "epsilon": self.epsilon(step)}

    def _batch(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, ...]:
        """``obs, action (B, 1) int64, reward, discount, next_obs`` of a replay batch on the device."""
        if self.device.type == "cpu" and batch["obs"].dtype == torch.float32:  # the replay's own types
            return (batch["obs"], batch["action"].long().view(-1, 1), batch["reward"], batch["discount"],
                    batch["next_obs"])
        return (self._input(batch["obs"]), self._tensor(batch["action"], torch.int64).view(-1, 1),
                self._tensor(batch["reward"]), self._tensor(batch["discount"]), self._input(batch["next_obs"]))

    def learn(self, batch: dict[str, torch.Tensor]) -> tuple[float, float]:
        """One gradient update on a batch of n-step transitions; returns (loss, mean Q of taken actions)."""
        obs, action, reward, discount, next_obs = self._batch(batch)
        if self.aug is not None:
            obs, next_obs = self.aug(obs), self.aug(next_obs)
        with torch.no_grad():
            next_target = self.target(next_obs)
            if self.double_q:
                best = self.q(next_obs).argmax(1, keepdim=True)
            else:
                best = next_target.argmax(1, keepdim=True)
            target = reward + discount * next_target.gather(1, best).squeeze(1)
        q = self.q(obs).gather(1, action).squeeze(1)
        loss = F.smooth_l1_loss(q, target) if self.huber else F.mse_loss(q, target)
        self.optim.zero_grad(set_to_none=True)
        loss.backward()
        if self.grad_clip > 0:
            clip_grad_norm(self.params, self.grad_clip)
        self.optim.step()
        if self.scheduler is not None:
            self.scheduler.step()
        self.updates += 1
        self._sync_target()
        return float(loss.detach()), float(q.detach().mean())

    def _sync_target(self) -> None:
        with torch.no_grad():
            if self.tau > 0:
                for target, online in zip(self.target_params, self.params, strict=True):
                    target.lerp_(online, self.tau)
            elif self.target_update <= 1 or self.updates % self.target_update == 0:
                self.target.load_state_dict(self.q.state_dict())

    def train(self, mode: bool = True) -> DQNAgent:
        super().train(mode)
        self.target.eval()
        return self


class Dueling(torch.nn.Module):
    """Q = V + A − mean(A): the network's last part is the advantage head; a copy of the Model's kind,
    built to one output on the same features, is the value head."""

    def __init__(self, network: torch.nn.Sequential, settings: NetworkSettings, obs_shape: tuple[int, ...]):
        super().__init__()
        self.body, self.advantage = network[:-1], network[-1]
        features = output_shape(self.body, obs_shape)
        self.value = instantiate(settings.Model, dict(settings.model or {}), features, (1,), "Model")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.body(x)
        a = self.advantage(h)
        return self.value(h) + a - a.mean(1, keepdim=True)
