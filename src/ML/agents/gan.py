"""Generative adversarial training (DCGAN by default): ``Model`` is the generator, ``Discriminator`` the critic,
scored by a Fréchet distance on fixed random features so that runs compare like accuracies (``GANAgent``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ML import ranks
from ML.accelerate import Accelerator
from ML.agents.base import BaseAgent, Bundle
from ML.blocks.network import build_optimizer, config_device
from ML.errors import UserError
from ML.hyperparams import instantiate


def feature_net(in_shape: tuple[int, ...], seed: int = 0) -> nn.Module:
    """A fixed random conv net (seeded) mapping images to 64 features, for the Fréchet distance."""
    state = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed)
        c = in_shape[0] if len(in_shape) == 3 else 1
        net = nn.Sequential(nn.Conv2d(c, 16, 3, 1, 1), nn.ReLU(), nn.Conv2d(16, 16, 3, 2, 1), nn.ReLU(),
                            nn.AdaptiveAvgPool2d(2), nn.Flatten(1))
    finally:
        torch.random.set_rng_state(state)
    return net.eval().requires_grad_(False)


def gaussian(features: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    f = features.double().cpu().numpy()
    return f.mean(0), np.cov(f, rowvar=False)


def frechet(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]) -> float:
    """``|μa − μb|² + tr(Σa + Σb − 2 (Σa^½ Σb Σa^½)^½)``, via symmetric eigendecompositions."""
    (mu_a, cov_a), (mu_b, cov_b) = a, b
    values, vectors = np.linalg.eigh(cov_a)
    root_a = (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T
    middle = np.linalg.eigvalsh(root_a @ cov_b @ root_a)
    trace = np.trace(cov_a) + np.trace(cov_b) - 2 * np.sqrt(np.clip(middle, 0, None)).sum()
    return float(((mu_a - mu_b) ** 2).sum() + max(trace, 0.0))


class GANAgent(BaseAgent):
    """GAN over a dataset of images. Images (in [0, 1]) are scaled to [-1, 1]; each update takes one
    discriminator step (real vs. generated, binary cross-entropy on logits) and one generator step (the
    non-saturating ``-log D(G(z))``), each with its own optimiser from ``Optim``/``lr``/``optim.*`` (DCGAN:
    Adam, lr 2e-4, betas (0.5, 0.999)); train.csv gets ``loss_d, loss_g, d_real, d_fake``.

    Inference: ``agent(z)`` maps latents ``(n, z_dim)`` to images in [0, 1]; ``agent.act(n)`` samples ``n``
    images; ``agent.discriminate(x)`` gives the probability that images ``x`` are real.

    Args:
        spec: the task (``obs_shape`` = one image's shape).
        settings: the run's settings (``network``: Model = generator, model, Optim, lr, optim;
            ``discriminator``; ``accel``: the device).
        z_dim: latent size.
        grid: samples in the saved image grid.
        eval_samples: generated (and test) images compared by the Fréchet distance.
    """

    reads = frozenset({"Model", "Discriminator", "Optim"})

    def __init__(self, spec: Any, settings: Bundle, z_dim: int = 100, grid: int = 64, eval_samples: int = 1000):
        super().__init__()
        self.obs_shape = tuple(int(s) for s in spec.obs_shape)
        if len(self.obs_shape) == 2:
            self.obs_shape = (1, *self.obs_shape)
        if len(self.obs_shape) != 3:
            raise UserError(f"GANAgent generates images shaped (C, H, W); this dataset's inputs are "
                            f"{list(spec.obs_shape)}")
        self.z_dim, self.grid, self.eval_samples = int(z_dim), int(grid), int(eval_samples)
        net, critic, accel = settings.network, settings.discriminator, settings.accel
        self.generator = instantiate(net.Model or "Generator", dict(net.model or {}),
                                     (self.z_dim,), self.obs_shape, "Model")
        self.discriminator = instantiate(critic.Discriminator or "Discriminator",
                                         dict(critic.discriminator or {}), self.obs_shape, (1,),
                                         "Discriminator")
        self.bounded = bool(getattr(self.generator, "bounded", False))
        self.device = config_device(accel)
        self.to(self.device)
        self.accel = Accelerator(accel, self.device, self.generator, self.discriminator)  # ML.accelerate
        ranks.broadcast_parameters(self)  # data-parallel: every rank starts from rank 0's weights
        self.optim_g = build_optimizer(net, self.generator.parameters())
        self.optim_d = build_optimizer(net, self.discriminator.parameters())
        self.fixed_z = torch.randn(self.grid, self.z_dim, generator=torch.Generator().manual_seed(0))
        self.features = feature_net(self.obs_shape).to(self.device)
        self._reference: Any = None  # the test set's feature statistics: (key, stats, fd_noise, n); never data

    # -- generating ---------------------------------------------------------------------------------

    def _generate(self, z: torch.Tensor) -> torch.Tensor:
        """Images in [-1, 1]."""
        out = self.generator(z.to(self.device)).reshape(len(z), *self.obs_shape)
        return out if self.bounded else torch.tanh(out)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Images in [0, 1] for latents ``(n, z_dim)``."""
        return (self._generate(torch.as_tensor(z, dtype=torch.float32)) + 1) / 2

    def act(self, obs: Any = 1, step: int = 0, eval_mode: bool = False) -> torch.Tensor:
        """``n`` sampled images (eval mode) for ``obs = n``, or the images of given latents."""
        z = torch.randn(int(obs), self.z_dim) if isinstance(obs, (int, np.integer)) else torch.as_tensor(obs)
        was_training = self.training
        self.eval()
        try:
            with torch.no_grad():
                return self(z.float()).cpu()
        finally:
            self.train(was_training)

    def discriminate(self, x: Any) -> torch.Tensor:
        """Probability that images ``x`` (in [0, 1]) are real."""
        with torch.no_grad():
            x = torch.as_tensor(x, dtype=torch.float32).to(self.device).reshape(-1, *self.obs_shape)
            return torch.sigmoid(self.discriminator(x * 2 - 1).flatten(1)[:, 0]).cpu()

    # -- learning -----------------------------------------------------------------------------------

    def update(self, batch: Any, step: int = 0) -> dict[str, float]:
        x = batch[0] if isinstance(batch, (tuple, list)) else batch
        accel = self.accel
        real = accel.to_device(x, torch.float32).reshape(-1, *self.obs_shape) * 2 - 1
        n = len(real)
        self.train()
        ones, zeros = torch.ones(n, device=self.device), torch.zeros(n, device=self.device)
        with accel.autocast():
            fake = self._generate(torch.randn(n, self.z_dim, device=self.device))
            logits_real = self.discriminator(real).flatten(1)[:, 0].float()
            logits_fake = self.discriminator(fake.detach()).flatten(1)[:, 0].float()
            loss_d = (F.binary_cross_entropy_with_logits(logits_real, ones)
                      + F.binary_cross_entropy_with_logits(logits_fake, zeros))
        # data-parallel runs average each network's gradients over the ranks before stepping
        accel.step(loss_d, self.optim_d, lambda: ranks.average_gradients(self.discriminator), update=False)

        with accel.autocast():
            logits_g = self.discriminator(fake).flatten(1)[:, 0].float()
            loss_g = F.binary_cross_entropy_with_logits(logits_g, ones)
        accel.step(loss_g, self.optim_g, lambda: ranks.average_gradients(self.generator))
        return {"loss_d": float(loss_d.detach()), "loss_g": float(loss_g.detach()),
                "d_real": float(torch.sigmoid(logits_real.detach()).mean()),
                "d_fake": float(torch.sigmoid(logits_fake.detach()).mean())}

    # -- evaluating ---------------------------------------------------------------------------------

    def _stats(self, images: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        feats = [self.features(chunk.to(self.device) * 2 - 1) for chunk in images.split(512)]
        return gaussian(torch.cat(feats))

    def describe(self) -> dict[str, Any]:
        return self.accel.describe()

    def evaluate(self, dataset: Any, step: int = 0, out_dir: Path | None = None) -> dict[str, float]:
        """The sample grid of a fixed latent batch (``out_dir/samples/step_<step>.png``) and the score.

        The Fréchet distance (FD) between Gaussian fits of features of generated and test images, the
        features of a small conv net with fixed, seeded random weights (no download, identical on every
        machine, so runs of a task compare): ``score = max(0, 1 − FD(generated, test) / FD(noise, test))``
        with ``noise`` uniform random images. 0 is no better than noise, 1 matches the test set's feature
        statistics: bounded and higher-is-better like an accuracy, so the pipeline can average and bootstrap
        it. ``fd`` and ``fd_noise`` are logged beside it.
        """
        from ML.envs.datasets import iterate

        was_training = self.training
        self.eval()
        try:
            with torch.no_grad():
                key = (type(dataset).__name__, len(dataset))
                if self._reference is None or self._reference[0] != key:
                    real = []
                    for x, _ in iterate(dataset, 1024):
                        real.append(x.reshape(-1, *self.obs_shape))
                        if sum(len(r) for r in real) >= self.eval_samples:
                            break
                    real_t = torch.cat(real)[: self.eval_samples]
                    noise = torch.rand(len(real_t), *self.obs_shape, generator=torch.Generator().manual_seed(1))
                    ref = self._stats(real_t)
                    self._reference = (key, ref, frechet(self._stats(noise), ref), len(real_t))
                _, ref, fd_noise, n = self._reference
                z = torch.randn(n, self.z_dim, generator=torch.Generator().manual_seed(2))
                generated = torch.cat([self(chunk).cpu() for chunk in z.split(512)])
                fd = frechet(self._stats(generated), ref)
                if out_dir is not None:
                    self.save_grid(Path(out_dir) / "samples" / f"step_{step}.png")
        finally:
            self.train(was_training)
        score = max(0.0, 1.0 - fd / fd_noise) if fd_noise > 0 else 0.0
        return {"score": score, "fd": fd, "fd_noise": fd_noise}

    def save_grid(self, path: Path) -> Path:
        """A PNG grid of the fixed latent batch's samples (written to a temporary name, then renamed)."""
        from torchvision.utils import save_image

        images = self(self.fixed_z).cpu()
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.stem + ".tmp.png")
        save_image(images, tmp, nrow=int(np.ceil(np.sqrt(len(images)))), padding=1)
        tmp.replace(path)
        return path


__all__ = ["GANAgent", "feature_net", "frechet"]
