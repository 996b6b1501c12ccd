"""Generative recipes: DCGAN and task=generate train on Digits offline, save sample grids, score by FD."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import torch

import ML
from ML.agents.gan import frechet, gaussian
from ML.hyperparams import resolve_config
from tests.conftest import run_ml


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open() as f:
        return list(csv.DictReader(f))


def test_dcgan_recipe_on_digits(workdir: Path) -> None:
    run_ml("task=dcgan", "train_steps=150", "evaluate_per_steps=75", "agent.eval_samples=300", "threads=1",
           "progress=false", cwd=workdir)
    run = workdir / "results/Exp/runs/dcgan/Generate/Digits/0"
    evals = _rows(run / "eval.csv")
    assert [int(r["step"]) for r in evals] == [0, 75, 150]
    assert {"score", "fd", "fd_noise"} <= set(evals[0])
    scores = [float(r["score"]) for r in evals]
    assert all(0 <= s <= 1 for s in scores) and scores[-1] > scores[0] and scores[-1] > 0.3
    assert {"loss_d", "loss_g", "d_real", "d_fake"} <= set(_rows(run / "train.csv")[0])
    assert sorted(p.name for p in (run / "samples").iterdir()) == ["step_0.png", "step_150.png", "step_75.png"]
    agent = ML.load_agent(str(run))
    images = agent.act(5)
    assert images.shape == (5, 1, 8, 8) and 0 <= images.min() and images.max() <= 1
    assert agent.discriminate(images).shape == (5,)


def test_generate_recipe_with_mlps_in_code(workdir: Path) -> None:
    config = resolve_config(argv=["task=generate"])
    assert (config.Agent, config.Model, config.Discriminator, config.generate) == ("GANAgent", "MLP", "MLP", True)
    agent = ML.launch(task="generate", train_steps=5, evaluate_per_steps=0, progress=False, threads=1,
                      **{"agent.eval_samples": 100, "model.hidden_dim": 32, "discriminator.hidden_dim": 32})
    assert agent(torch.zeros(2, agent.z_dim)).shape == (2, 1, 8, 8)
    assert (workdir / "results/Exp/runs/generate/Generate/Digits/0/samples/step_5.png").is_file()


def test_frechet_distance_matches_the_closed_form() -> None:
    rng = np.random.RandomState(0)
    a = torch.as_tensor(rng.randn(4000, 3))
    b = torch.as_tensor(rng.randn(4000, 3) * 2 + 1)
    # N(0, I) vs N(1, 4I): |mu|^2 = 3, trace term 3 * (1 + 4 - 2 * 2) = 3
    assert abs(frechet(gaussian(a), gaussian(b)) - 6.0) < 0.4
    assert frechet(gaussian(a), gaussian(a)) < 1e-6


def test_an_image_folder_gan_checkpoint_holds_no_images(workdir: Path) -> None:
    """agent.pt carries weights, optimiser moments and the run state (weights-only loadable), not the data."""
    from PIL import Image

    folder = workdir / "faces"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(400):
        Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(folder / f"{i:03d}.png")
    run_ml("task=dcgan", "Dataset=ImageFolder", f"dataset.root={folder}", "train_steps=2", "evaluate_per_steps=0",
           "batch_size=8", "agent.eval_samples=64", "agent.grid=4", "model.channels=8", "discriminator.channels=8",
           "threads=1", "progress=false", cwd=workdir)
    run = workdir / "results/Exp/runs/dcgan/Generate/ImageFolder/0"
    payload = torch.load(run / "agent.pt", weights_only=True)  # no pickled objects
    agent = ML.load_agent(str(run))
    weights = sum(t.numel() * t.element_size() for t in agent.state_dict().values())
    dataset = 400 * 3 * 32 * 32
    size = (run / "agent.pt").stat().st_size
    assert size < 3 * weights + 200_000 < dataset  # weights + two Adam moments + a little; the images: 1.2 MB
    assert payload["run"]["finished"] is True and agent.act(2).shape == (2, 3, 32, 32)
