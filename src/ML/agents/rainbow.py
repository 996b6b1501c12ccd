"""Rainbow's update as dopamine's Atari-100k agents run it (DER, and the base of SPR): C51, double Q, noisy
nets and dueling through ``FullRainbowNetwork``, prioritized replay, n-step returns."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from ML.agents.base import Bundle
from ML.agents.distributional import categorical_loss, project_distribution
from ML.agents.dqn import DQNAgent
from ML.blocks.optim import clip_grad_norm
from ML.errors import UserError


class RainbowAgent(DQNAgent):
    """dopamine's ``JaxFullRainbowAgent`` / ``Atari100kRainbowAgent`` update (google/dopamine,
    ``jax/agents/full_rainbow/full_rainbow_agent.py`` and ``labs/atari_100k/atari_100k_rainbow_agent.py``,
    Apache-2.0), on ``Model: FullRainbowNetwork`` (``ML.blocks.rainbow``), which carries the atoms, the
    support, noisy layers and the dueling heads.

    One update (``train`` there): the target is built with one noise draw shared by the online network
    (which picks the next action, double Q) and the target network (whose distribution of that action is
    projected onto the support shifted by the n-step reward and discount, C51); the loss is the
    cross-entropy of the online network's logits of the taken action, under a second, fresh noise draw
    (Huber on Q when the network is not distributional). With ``prioritized`` replay the loss of each
    transition is weighted by ``1/√(p + 1e-10)`` normalised by the batch's largest (dopamine's fixed
    exponent 0.5) and its new priority is ``√(loss + 1e-10)``; new transitions get the largest priority so
    far. The target network is copied every ``target_update`` environment steps (dopamine's
    ``target_update_period`` counts training steps, not gradient updates), or, with ``tau`` > 0, moved
    ``tau`` of the way to the online network after every gradient update (an exponential moving average:
    SPR's EMA target encoder with momentum 1 − tau; SPR on Atari copies every step instead, momentum 0).

    Args (besides DQNAgent's, whose ``target_update`` here counts environment steps):
        prioritized: sample in proportion to priorities (``replay_scheme: prioritized``); false: uniform.
        stratified: one prioritized draw in each of ``batch_size`` equal slices of the priority total (the
            sum tree of SPR's replay); false: independent draws (``PrioritizedSamplingDistribution``).
    """

    def __init__(self, spec: Any, settings: Bundle, prioritized: bool = True, stratified: bool = False,
                 **kwargs: Any):
        if kwargs.get("dueling"):
            raise UserError(f"{type(self).__name__}: agent.dueling is DQNAgent's wrapper; FullRainbowNetwork "
                            "has its own dueling heads (model.dueling)")
        super().__init__(spec, settings, **kwargs)
        if not hasattr(self.net, "outputs") or not hasattr(self.net, "share_noise"):
            raise UserError(f"{type(self).__name__} needs Model: FullRainbowNetwork (C51 atoms, noisy layers), "
                            f"not {type(self.net).__name__}")
        self.target.train()  # dopamine's target network draws noise too (no eval_mode in target_output)
        self.prioritized, self.stratified = bool(prioritized), bool(stratified)
        if self.prioritized and int((settings.env.env or {}).get("num_envs") or 1) > 1:
            raise UserError(f"{type(self).__name__}: prioritized replay samples one replay, not env.num_envs games' "
                            "replays; drop env.num_envs or pass agent.prioritized=false")

    @property
    def net(self) -> Any:
        """The online ``FullRainbowNetwork`` (the Model after the Eyes)."""
        return self.q[-1]

    @property
    def target_net(self) -> Any:
        return self.target[-1]

    def train(self, mode: bool = True) -> RainbowAgent:
        super().train(mode)
        self.target.train(mode)
        return self

    def describe(self) -> dict[str, Any]:
        """What run.json records about this update beside the config: where it departs from dopamine's."""
        return {"reference_differences": [
            "an n-step return cut short by a time limit bootstraps with gamma^k for its k steps (dopamine: "
            "gamma^n)", "random streams are torch's, not JAX keys (each noisy layer draws its own noise)"]}

    def _sync_target(self) -> None:
        """The target moves in ``update``: copies every ``target_update`` environment steps, or an EMA."""

    def _sample_args(self) -> dict[str, Any]:
        return {}

    def update(self, replay: Any, step: int) -> dict[str, float]:
        if step < self.learn_start or len(replay) < self.batch_size:
            return {}
        totals: dict[str, float] = {}
        if step % self.update_every == 0:
            for _ in range(self.updates_per_step):
                batch = replay.sample(self.batch_size, self.n_step, self.gamma, clip=self.reward_clip or None,
                                      prioritized=self.prioritized, stratified=self.stratified,
                                      **self._sample_args())
                metrics, td_loss = self.learn_td(batch)
                if self.tau > 0:
                    with torch.no_grad():
                        for target, online in zip(self.target_params, self.q.parameters(), strict=True):
                            target.lerp_(online, self.tau)
                if self.prioritized:
                    replay.update_priorities(batch["index"].numpy(), (td_loss + 1e-10).sqrt().cpu().numpy())
                for key, value in metrics.items():
                    totals[key] = totals.get(key, 0.0) + value / self.updates_per_step
        if self.tau == 0 and (self.target_update <= 1 or step % self.target_update == 0):
            self.target.load_state_dict(self.q.state_dict())
        return {**totals, "epsilon": self.epsilon(step)}

    def loss_weights(self, batch: dict[str, torch.Tensor]) -> torch.Tensor | None:
        """Importance weights of a prioritized batch: ``1/√(p + 1e-10)`` over the batch's largest."""
        if "probability" not in batch:
            return None
        weights = 1.0 / (self._tensor(batch["probability"]) + 1e-10).sqrt()
        return weights / weights.max()

    def learn_td(self, batch: dict[str, torch.Tensor]) -> tuple[dict[str, float], torch.Tensor]:
        """One gradient update; returns its metrics and each transition's TD loss (for its priority)."""
        total, td_loss, metrics = self.losses(batch)
        weights = self.loss_weights(batch)
        loss = (total * weights).mean() if weights is not None else total.mean()
        self.optim.zero_grad(set_to_none=True)
        loss.backward()
        if self.grad_clip > 0:
            clip_grad_norm(self.params, self.grad_clip)
        self.optim.step()
        self.updates += 1
        return {"loss": float(loss.detach()), **metrics}, td_loss.detach()

    def losses(self, batch: dict[str, torch.Tensor],
               fresh_noise: bool = True) -> tuple[torch.Tensor, torch.Tensor, dict[str, float]]:
        """Per-transition (loss to minimise, TD loss for priorities, metrics). ``fresh_noise=False`` keeps
        the noise the networks hold (tests fix it)."""
        obs, action, reward, discount, next_obs = self._batch(batch)
        if self.aug is not None:
            obs, next_obs = self.aug(obs), self.aug(next_obs)
        target = self.target_values(next_obs, reward, discount, fresh_noise)
        out = self.net.outputs(self.q[:-1](obs), fresh_noise=fresh_noise)
        td_loss, q = self.td_loss(out, action.view(-1), target)
        return td_loss, td_loss, {"q": float(q.detach().mean())}

    def td_loss(self, out: Any, action: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """C51's cross-entropy on the taken action's logits (Huber on its Q without atoms), and its Q."""
        rows = torch.arange(len(action), device=action.device)
        q = out.q_values[rows, action]
        if self.net.distributional:
            return categorical_loss(out.logits[rows, action], target), q
        return F.huber_loss(q, target, reduction="none", delta=1.0), q

    @torch.no_grad()
    def target_values(self, next_obs: torch.Tensor, reward: torch.Tensor, discount: torch.Tensor,
                      fresh_noise: bool = True) -> torch.Tensor:
        """dopamine's ``target_output``: the projected C51 target distribution (or the target Q)."""
        if fresh_noise and self.net.noisy and self.net.training:
            self.net.reset_noise()
        self.target_net.share_noise(self.net)  # one key for both networks in dopamine's target
        next_obs = self.q[:-1](next_obs)
        target = self.target_net.outputs(next_obs, fresh_noise=False)
        chooser = self.net.outputs(next_obs, fresh_noise=False) if self.double_q else target
        best = chooser.q_values.argmax(1)
        rows = torch.arange(len(best), device=best.device)
        if not self.net.distributional:
            return reward + discount * target.q_values[rows, best]
        support = self.net.support
        supports = reward[:, None] + discount[:, None] * support
        return project_distribution(supports, target.probabilities[rows, best], support)
