"""Classification: ``input → Eyes → Model → logits``, cross-entropy, one optimiser step per batch."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ML.agents.base import Agent
from ML.blocks.network import build_network, build_optimizer, pick_device
from ML.errors import UserError


class ClassifierAgent(Agent):
    """Supervised classifier over a dataset-as-environment.

    Built as ``ClassifierAgent(spec, config, **agent)``: the network from ``Eyes``/``Model`` (shapes
    ``spec.obs_shape → (spec.num_classes,)``) and the optimiser from ``Optim``/``lr``/``optim``.

    Args:
        spec: the task (``obs_shape``, ``num_classes``).
        config: the resolved config (Eyes, eyes, Model, model, Optim, optim, lr, device).
        eval_batch_size: batch size of ``evaluate``.
        label_smoothing: cross-entropy label smoothing.
    """

    def __init__(self, spec: Any, config: Any, eval_batch_size: int = 1024, label_smoothing: float = 0.0):
        super().__init__()
        if not spec.num_classes:
            raise UserError("ClassifierAgent needs a classification task: set Dataset=... "
                            "(e.g. Dataset=Digits)")
        self.obs_shape = tuple(int(s) for s in spec.obs_shape)
        self.num_classes = int(spec.num_classes)
        self.eval_batch_size = int(eval_batch_size)
        self.label_smoothing = float(label_smoothing)
        self.net = build_network(config, self.obs_shape, (self.num_classes,))
        self.device = pick_device(config.get("device"))
        self.net.to(self.device)
        self.optim = build_optimizer(config, self.net.parameters())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(batch, num_classes)``."""
        out = self.net(x)
        return out.reshape(out.shape[0], self.num_classes)

    def update(self, batch: Any, step: int = 0) -> dict[str, float]:
        """One optimiser step on ``(x, y)``; returns the batch's loss and accuracy."""
        x, y = batch
        x = torch.as_tensor(x, dtype=torch.float32).to(self.device, non_blocking=True)
        y = torch.as_tensor(y, dtype=torch.long).to(self.device, non_blocking=True)
        self.net.train()
        logits = self(x)
        loss = F.cross_entropy(logits, y, label_smoothing=self.label_smoothing)
        self.optim.zero_grad(set_to_none=True)
        loss.backward()
        self.optim.step()
        with torch.no_grad():
            accuracy = (logits.argmax(-1) == y).float().mean()
        return {"loss": float(loss.item()), "accuracy": float(accuracy.item())}

    def evaluate(self, dataset: Any) -> dict[str, float]:
        """Accuracy over the whole ``dataset`` (eval mode, no gradients)."""
        from ML.envs.datasets import iterate

        was_training = self.training
        self.eval()
        correct = total = 0
        try:
            with torch.no_grad():
                for x, y in iterate(dataset, self.eval_batch_size):
                    x, y = x.to(self.device), y.to(self.device)
                    correct += int((self(x).argmax(-1) == y).sum())
                    total += len(y)
        finally:
            self.train(was_training)
        if total == 0:
            raise UserError("the test set is empty")
        return {"accuracy": correct / total}

    def act(self, obs: Any, step: int = 0, eval_mode: bool = True) -> Any:
        """The predicted class: an ``int`` for one input, an int64 array for a batch."""
        x = obs if isinstance(obs, torch.Tensor) else torch.as_tensor(np.asarray(obs))
        x = x.float()
        single = tuple(x.shape) == self.obs_shape
        if single:
            x = x.unsqueeze(0)
        was_training = self.training
        self.eval()
        try:
            with torch.no_grad():
                prediction = self(x.to(self.device)).argmax(-1).cpu().numpy()
        finally:
            self.train(was_training)
        return int(prediction[0]) if single else prediction
