"""Classification: ``input → Eyes → Model → logits``, cross-entropy, one optimiser step per batch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ML import ranks
from ML.accelerate import Accelerator
from ML.agents.base import BaseAgent, Bundle, Transient
from ML.blocks.network import build_aug, build_network, build_optimizer, build_scheduler, config_device
from ML.errors import UserError


class ClassifierAgent(BaseAgent):
    """Supervised classifier over a dataset-as-environment.

    Built as ``ClassifierAgent(spec, settings, **agent)``: the network from ``Eyes``/``Model`` (shapes
    ``spec.obs_shape → (spec.num_classes,)``) and the optimiser from ``Optim``/``lr``/``optim``.

    Args:
        spec: the task (``obs_shape``, ``num_classes``).
        settings: the run's settings (``network``: Eyes, Model, Optim with lr...; ``accel``: the device;
            ``dataset.norm``; ``run.train_steps``: the scheduler's length).
        eval_batch_size: batch size of ``evaluate``.
        label_smoothing: cross-entropy label smoothing.
    """

    reads = frozenset({"Eyes", "Pool", "Trunk", "Model", "Aug", "Optim", "Scheduler"})

    def __init__(self, spec: Any, settings: Bundle, eval_batch_size: int = 1024, label_smoothing: float = 0.0):
        super().__init__()
        if not spec.num_classes:
            raise UserError("ClassifierAgent needs a classification task: set Dataset=... "
                            "(e.g. Dataset=Digits)")
        self.obs_shape = tuple(int(s) for s in spec.obs_shape)
        self.num_classes = int(spec.num_classes)
        self.eval_batch_size = int(eval_batch_size)
        self.label_smoothing = float(label_smoothing)
        net, accel = settings.network, settings.accel
        self.net = build_network(net.body(), self.obs_shape, (self.num_classes,))
        norm = (spec.info or {}).get("norm") if settings.dataset.norm else None
        if norm:  # norm=true: the training set's per-channel statistics, the network's first step
            from ML.blocks.resnet import Normalize

            self.net = nn.Sequential(Normalize(norm["mean"], norm["std"], self.obs_shape), *self.net)
        self.aug = build_aug(net, self.obs_shape)
        self.device = config_device(accel)
        self.to(self.device)
        self.accel = Accelerator(accel, self.device, self.net)  # accelerate=true (ML.accelerate)
        self.optim = build_optimizer(net, self.net.parameters())
        self.scheduler = build_scheduler(net, self.optim, int(settings.run.train_steps))  # one update a step
        self._wrap()

    def _wrap(self) -> None:
        """The module the update runs: DistributedDataParallel in a multi-process run, compiled with
        ``compile=true``; this process's only (agent.pt holds the plain ``net``)."""
        train_net = ranks.wrap(self.net, self.device) or self.net
        self.train_net = Transient(self.accel.compile(train_net))

    def describe(self) -> dict[str, Any]:
        return self.accel.describe()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(batch, num_classes)``."""
        out = self.net(x)
        return out.reshape(out.shape[0], self.num_classes)

    def update(self, batch: Any, step: int = 0) -> dict[str, float]:
        """One optimiser step on ``(x, y)``; returns the batch's loss and accuracy."""
        x, y = batch
        accel = self.accel
        x, y = accel.to_device(x, torch.float32), accel.to_device(y, torch.long)
        if not self.net.training:  # (a no-op walk over every module otherwise: measurable on small nets)
            self.net.train()
        if self.aug is not None:  # Aug: training batches only
            self.aug.train()
            with torch.no_grad():
                x = self.aug(x)
        if self.train_net.value is None:  # unpickled (agent.pt): wrap again for this run
            self._wrap()
        net = self.train_net.value
        with accel.autocast():
            logits = net(x).reshape(len(x), self.num_classes)
            loss = F.cross_entropy(logits.float(), y, label_smoothing=self.label_smoothing)
        accel.step(loss, self.optim)
        if self.scheduler is not None:
            self.scheduler.step()
        with torch.no_grad():
            stats = torch.stack([loss.detach(), (logits.argmax(-1) == y).float().mean()]).tolist()
        return {"loss": stats[0], "accuracy": stats[1]}

    def evaluate(self, dataset: Any, step: int = 0, out_dir: Path | None = None) -> dict[str, float]:
        """Accuracy over the whole ``dataset`` (eval mode, no gradients): the score."""
        from ML.envs.datasets import iterate

        was_training = self.training
        self.eval()
        correct = total = 0
        try:
            with torch.no_grad():
                accel = self.accel
                for x, y in iterate(dataset, self.eval_batch_size):
                    x, y = accel.to_device(x), accel.to_device(y)
                    with accel.autocast():
                        correct += int((self(x).argmax(-1) == y).sum())
                    total += len(y)
        finally:
            self.train(was_training)
        if total == 0:
            raise UserError("the test set is empty")
        return {"score": correct / total, "accuracy": correct / total}

    def act(self, obs: Any, step: int = 0, eval_mode: bool = False) -> Any:
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
