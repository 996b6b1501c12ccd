"""The classifier: learns Digits through the real ML.launch, builds CNNs on MNIST, adapts user models."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pytest
import torch

import ML
from ML.agents.classifier import ClassifierAgent
from ML.checkpoints import agent_settings
from ML.envs import datasets
from ML.envs.datasets import DatasetSettings
from ML.errors import UserError
from ML.hyperparams import resolve_config
from tests.conftest import run_ml
from tests.test_datasets import write_mnist


def scores(run: Path) -> list[float]:
    with (run / "eval.csv").open() as f:
        return [float(row["score"]) for row in csv.DictReader(f)]


def agent_for(*argv: str) -> tuple[ClassifierAgent, object, object]:
    config = resolve_config(argv=["task=classify", *argv])
    train, test, spec = datasets.load(DatasetSettings.from_config(config))
    return ClassifierAgent(spec=spec, settings=agent_settings(config)), train, test


def test_default_recipe_learns_digits(workdir: Path) -> None:
    threads = torch.get_num_threads()
    try:  # one thread: a tiny MLP gains nothing from two, and loses a lot when the cores are shared
        agent = ML.launch(task="classify", progress=False, threads=1)
    finally:
        torch.set_num_threads(threads)
    run = workdir / "results/Exp/runs/classify/Classify/Digits/0"
    accuracy = scores(run)
    assert accuracy[0] < 0.3 and accuracy[-1] >= 0.95
    _, test, _ = datasets.load(DatasetSettings.from_config(resolve_config(argv=["task=classify"])))
    assert agent.evaluate(test)["accuracy"] == pytest.approx(accuracy[-1], abs=1e-6)
    saved = ML.load_agent(str(run))  # rebuilt from agent.pt's weights-only payload
    assert saved.evaluate(test)["accuracy"] == pytest.approx(accuracy[-1], abs=1e-6)


def test_update_evaluate_act_and_pickling() -> None:
    torch.manual_seed(0)
    agent, train, test = agent_for("lr=0.003")
    stream = datasets.batches(train, 64, torch.Generator().manual_seed(0))
    before = agent.evaluate(test)["accuracy"]
    metrics = [agent.update(next(stream), step) for step in range(150)]
    assert set(metrics[0]) == {"loss", "accuracy"} and metrics[-1]["loss"] < metrics[0]["loss"]
    after = agent.evaluate(test)["accuracy"]
    assert after > max(before, 0.8) and agent.training
    x, y = test.take(slice(0, 10))
    one = agent.act(x[0].numpy())
    assert isinstance(one, int) and 0 <= one < 10
    many = agent.act(x)
    assert many.shape == (10,) and many.dtype == np.int64 and many[0] == one
    buffer = io.BytesIO()
    torch.save(agent, buffer)
    buffer.seek(0)
    copy = torch.load(buffer, weights_only=False)
    assert copy.evaluate(test)["accuracy"] == after
    assert copy.optim.state_dict()["state"]  # Adam moments travel with the agent
    copy.update(next(stream), 150)


def test_mnist_with_a_five_layer_cnn(workdir: Path) -> None:
    write_mnist(workdir / "datasets", n_train=64, n_test=20)  # the default dataset.root is ./datasets
    agent = ML.launch("eyes.depth=5", task="classify", Dataset="MNIST", Eyes="CNN", train_steps=3,
                      evaluate_per_steps=3, batch_size=16, progress=False, save=False)
    assert sum(isinstance(m, torch.nn.Conv2d) for m in agent.modules()) == 5
    run = workdir / "results/Exp/runs/classify/Classify/MNIST/0"
    assert len(scores(run)) == 2


def test_readme_models_for_flat_features(workdir: Path) -> None:
    (workdir / "Run.py").write_text(
        "from torch import nn\n"
        "model = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))\n"
        "class Model(nn.Module):\n"
        "    def __init__(self, in_features, out_features):\n"
        "        super().__init__()\n"
        "        self.model = nn.Sequential(nn.Linear(in_features, 128), nn.Linear(128, out_features))\n"
        "    def forward(self, x):\n"
        "        return self.model(x)\n")
    for path in ("Run.model", "Run.Model"):
        agent, train, test = agent_for(f"Model={path}")
        assert isinstance(agent.net[1], torch.nn.Flatten)  # the Model gets the flat features it was written for
        agent.update(next(datasets.batches(train, 32)), 0)
        assert 0 <= agent.evaluate(test)["accuracy"] <= 1


def test_network_that_cannot_fit_is_a_clear_error(workdir: Path) -> None:
    (workdir / "Run.py").write_text("from torch import nn\nmodel = nn.Linear(50, 10)\n")
    with pytest.raises(UserError, match=r"does not map inputs of shape \[1, 8, 8\] to \[10\]"):
        agent_for("Model=Run.model")


@pytest.mark.skipif(torch.cuda.is_available(), reason="hardware: this machine has a CUDA GPU")
def test_device_cuda_without_a_gpu_is_a_clear_error(workdir: Path) -> None:
    with pytest.raises(UserError, match="no CUDA GPU is available here; use device=cpu or device=auto"):
        agent_for("device=cuda")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="hardware: needs a CUDA GPU")
def test_device_cuda_trains_on_the_gpu(workdir: Path) -> None:
    agent, train, test = agent_for("device=cuda")
    assert next(agent.parameters()).device.type == "cuda"
    stream = datasets.batches(train, 64, torch.Generator().manual_seed(0))
    metrics = [agent.update(next(stream), step) for step in range(100)]
    assert metrics[-1]["loss"] < metrics[0]["loss"] and agent.evaluate(test)["accuracy"] > 0.5


def test_cli_bad_dataset_is_one_line(workdir: Path) -> None:
    proc = run_ml("task=classify", "Dataset=Nope", cwd=workdir, check=False)
    assert proc.returncode != 0
    assert "unknown Dataset 'Nope'" in proc.stderr and "Traceback" not in proc.stderr
    assert not (workdir / "results").exists() or not any((workdir / "results").rglob("run.json"))
