"""A small agent of your own: Q-learning with one network (no target network), 1-step targets, an
epsilon-greedy policy. One file, no changes to the engine: a recipe names it as ``Agent: my_agent.QAgent``.

The contract (docs/agents.md): the engine builds ``QAgent(spec=..., settings=..., **agent_args)``, where
``spec`` is the task's shapes (``ML.envs.base.TaskSpec``), ``settings`` the run's typed settings
(``ML.agents.base.Bundle``: ``settings.batch_size``, ``settings.network.lr``, ``settings.run.seed``...) and
``agent_args`` the recipe's ``agent:`` section; then it calls ``act`` for every step and evaluation episode,
``update`` after every training step, ``describe`` once for run.json, ``train()``/``eval()`` around
evaluations. agent.pt keeps its modules, optimisers, numpy/torch generators and ``updates``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ML.agents.base import BaseAgent, Bundle


class QAgent(BaseAgent):
    """Q-learning on a small MLP from observations to one value per discrete action.

    Args:
        spec, settings: given by the engine.
        hidden: units of the two hidden layers.
        gamma: discount per step.
        learn_start: environment steps of experience before the first update.
        eps_end, eps_decay_steps: epsilon falls linearly from 1 to ``eps_end`` over this many steps.
    """

    def __init__(self, spec: Any, settings: Bundle, hidden: int = 64, gamma: float = 0.99, learn_start: int = 500,
                 eps_end: float = 0.05, eps_decay_steps: int = 5000):
        super().__init__()
        self.num_actions = int(spec.num_actions)
        self.gamma, self.learn_start = float(gamma), int(learn_start)
        self.eps_end, self.eps_decay_steps = float(eps_end), max(int(eps_decay_steps), 1)
        self.batch_size = settings.batch_size
        inputs = int(np.prod(spec.obs_shape))
        self.q = nn.Sequential(nn.Flatten(), nn.Linear(inputs, hidden), nn.ReLU(), nn.Linear(hidden, hidden),
                               nn.ReLU(), nn.Linear(hidden, self.num_actions))
        self.optim = torch.optim.Adam(self.q.parameters(), lr=float(settings.network.lr))
        self.rng = np.random.default_rng(int(settings.run.seed))  # saved in agent.pt: a resumed run draws the same
        self.updates = 0

    def act(self, obs: Any, step: int, eval_mode: bool = False) -> int:
        """One observation (no batch axis) → one action; greedy when evaluating."""
        eps = 0.0 if eval_mode else max(self.eps_end, 1 - step / self.eps_decay_steps)
        if self.rng.random() < eps:
            return int(self.rng.integers(self.num_actions))
        with torch.no_grad():
            return int(self.q(torch.as_tensor(obs, dtype=torch.float32)[None]).argmax(1))

    def update(self, replay: Any, step: int) -> dict[str, float]:
        """One gradient step on a batch of the replay's transitions; the losses go to train.csv."""
        if step < self.learn_start or len(replay) < self.batch_size:
            return {}
        batch = replay.sample(self.batch_size, n_step=1, gamma=self.gamma)
        obs, next_obs = batch["obs"].float(), batch["next_obs"].float()
        with torch.no_grad():
            target = batch["reward"].float() + batch["discount"].float() * self.q(next_obs).max(1).values
        q = self.q(obs).gather(1, batch["action"].long().view(-1, 1)).squeeze(1)
        loss = F.smooth_l1_loss(q, target)
        self.optim.zero_grad()
        loss.backward()
        self.optim.step()
        self.updates += 1
        return {"loss": loss.item(), "q": q.detach().mean().item()}

    def describe(self) -> dict[str, Any]:
        """What run.json records about this agent beside the task."""
        return {"agent": "QAgent (examples/my_agent)", "parameters": sum(p.numel() for p in self.q.parameters())}
