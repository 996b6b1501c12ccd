"""SPR (Schwarzer et al. 2021) as dopamine's ``labs/atari_100k/spr_agent.py`` runs it: Rainbow's update plus
a self-predictive loss on latents rolled forward ``jumps`` steps by a transition model."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from ML.agents.base import Bundle
from ML.agents.rainbow import RainbowAgent
from ML.blocks.network import build_optimizer
from ML.blocks.spr import TransitionModel, flax_dense


class SPRAgent(RainbowAgent):
    """dopamine's ``SPRAgent`` (google/dopamine ``labs/atari_100k/spr_agent.py`` and ``spr_networks.py``,
    Apache-2.0) on ``Model: FullRainbowNetwork`` with ``renormalize: true`` (SPRNetwork's encoder).

    Each update samples transitions with their next ``jumps`` actions and observations
    (``Replay.sample(sequence=jumps)``) and adds to each transition's C51 loss ``spr_weight`` times the SPR
    loss: the online latent of the first observation is rolled through the actions by ``TransitionModel``;
    each step's latent goes through the shared 512 layer without noise and the predictor
    (``spr_predict``); the targets are the target network's latents of the observations at those steps
    through the same layer without noise (``encode_project``); the loss is the squared distance of the
    L2-normalised prediction and target, summed over features, zero past the episode's end, averaged over the
    ``jumps`` steps. Every observation (the ``jumps`` future ones too) and the next observation are augmented
    independently. Priorities come from the C51 loss alone. With ``target_update: 1`` the "target encoder" is
    the online one as it was before this step's updates (SPR's τ = 0 EMA on Atari).

    Args (besides RainbowAgent's):
        jumps: prediction steps (K).
        spr_weight: the SPR loss's weight (0: none, and no sequences sampled).
    """

    def __init__(self, spec: Any, settings: Bundle, jumps: int = 5, spr_weight: float = 5.0, **kwargs: Any):
        super().__init__(spec, settings, **kwargs)
        self.jumps, self.spr_weight = int(jumps), float(spr_weight)
        channels = self.net.latent_shape[0]
        hidden = self.net.hidden.out_features
        self.transition = TransitionModel(self.num_actions, channels, self.net.renormalize).to(self.device)
        self.predictor = flax_dense(hidden, hidden).to(self.device)
        self.params = [*self.q.parameters(), *self.transition.parameters(), *self.predictor.parameters()]
        self.optim = build_optimizer(settings.network, self.params)

    def describe(self) -> dict[str, Any]:
        described = super().describe()
        described["reference_differences"] += [
            "the C51 target uses the n-step return and the observation n steps on (dopamine's spr_agent passes "
            "the one-step reward with gamma^n and the observation n-1 steps on)",
            "a prediction step counts while no terminal lies between (dopamine's same_trajectory mask skips the "
            "first step's terminal)"]
        return described

    def _sample_args(self) -> dict[str, Any]:
        return {"sequence": self.jumps} if self.spr_weight > 0 else {}

    def losses(self, batch: dict[str, torch.Tensor],
               fresh_noise: bool = True) -> tuple[torch.Tensor, torch.Tensor, dict[str, float]]:
        if self.spr_weight <= 0:
            return super().losses(batch, fresh_noise)
        obs, action, reward, discount, next_obs = self._batch(batch)
        future = self._input(batch["future_obs"])                                  # (B, K, C, H, W)
        states = torch.cat([obs[:, None], future], 1)
        if self.aug is not None:
            states = self.aug(states.flatten(0, 1)).view(states.shape)
            next_obs = self.aug(next_obs)
        target = self.target_values(next_obs, reward, discount, fresh_noise)
        if fresh_noise and self.net.noisy and self.net.training:
            self.net.reset_noise()
        latent = self.net.encode(self.q[:-1](states[:, 0]))
        out = self.net.heads(latent.flatten(1))
        td_loss, q = self.td_loss(out, action.view(-1), target)
        rolled = self.transition(latent, self._tensor(batch["actions"], torch.int64))   # (B, K, C', H', W')
        predictions = self.predictor(self.net.project(rolled.flatten(2)))
        with torch.no_grad():
            future = self.target_net.encode(self.q[:-1](states[:, 1:].flatten(0, 1)))
            targets = self.target_net.project(future.flatten(1)).view(predictions.shape)
        spr = (F.normalize(predictions, dim=-1, eps=0.0) - F.normalize(targets, dim=-1, eps=0.0)).pow(2).sum(-1)
        spr = (spr * self._tensor(batch["same_episode"])).mean(1)
        return td_loss + self.spr_weight * spr, td_loss, {"q": float(q.detach().mean()),
                                                         "td_loss": float(td_loss.detach().mean()),
                                                         "spr_loss": float(spr.detach().mean())}
