"""Classification throughput: ``ML.launch`` with and without ``accelerate=true`` against a plain PyTorch loop.

    .venv/bin/python benchmarks/classify.py [--steps 2000] [--repeats 3] [--threads 1]
    .venv/bin/python benchmarks/classify.py --resnet --device cuda --steps 300   # ResNet18, CIFAR-10-shaped

Default: the classify recipe (Digits, the MLP, Adam, batch 64). ``--resnet``: ResNet18 (``Eyes=ResNet18``)
on CIFAR-10-shaped random uint8 images (50,000 × 3 × 32 × 32, 10 classes, batch 256) written as an
``ImageFolder``-free in-memory dataset — meant for a GPU. The plain loop is what one writes by hand: the
same network and optimiser, a ``randperm`` per epoch, index the in-memory tensors, forward, cross-entropy,
backward, step, and ``loss.item()`` per step (the engine logs the loss too). Rates are images/s between
the first and last ``train.csv`` rows (start-up and evaluation excluded on both sides). Prints the rates
and the ratios engine / plain and accelerated / plain (target: engine ≥ 1.0× plain).
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

import ML
from ML.agents.classifier import ClassifierAgent
from ML.checkpoints import agent_settings
from ML.envs import datasets
from ML.envs.datasets import DatasetSettings
from ML.hyperparams import resolve_config


class RandomImages(datasets.TensorData):
    """CIFAR-10-shaped random uint8 images (a stand-in when the CIFAR-10 files are absent)."""

    def __init__(self, train: bool = True, size: int = 50000):
        g = torch.Generator().manual_seed(0 if train else 1)
        n = size if train else size // 5
        super().__init__(torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=g),
                         torch.randint(0, 10, (n,), generator=g), 1 / 255, list(range(10)))


def settings(resnet: bool, device: str) -> dict:
    if resnet:
        return dict(task="classify", Dataset=RandomImages, Eyes="ResNet18", Model="MLP", batch_size=256,
                    device=device)
    return dict(task="classify", device=device)


def engine(steps: int, kwargs: dict, accelerate: bool, seed: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        argv, sys.argv = sys.argv, sys.argv[:1]
        try:
            ML.launch(**kwargs, train_steps=steps, evaluate_per_steps=10 * steps, log_per_steps=steps // 10,
                      save=False, progress=False, seed=seed, run_dir=tmp, results=tmp, accelerate=accelerate,
                      resume=False)
        finally:
            sys.argv = argv
        rows = list(csv.DictReader((Path(tmp) / "train.csv").open()))
    first, last = rows[0], rows[-1]
    return (int(last["frame"]) - int(first["frame"])) / (float(last["time"]) - float(first["time"]))


def plain(steps: int, kwargs: dict, seed: int) -> float:
    """A hand-written loop on the engine's network (built the same way) and the same in-memory data."""
    torch.manual_seed(seed)
    config = resolve_config((), {k: v for k, v in kwargs.items()})
    train, _, spec = datasets.load(DatasetSettings.from_config(config))
    net = ClassifierAgent(spec=spec, settings=agent_settings(config)).net  # the same architecture, fresh weights
    device = torch.device(kwargs.get("device") or "cpu")
    net.to(device)
    optim = torch.optim.Adam(net.parameters(), lr=float(config.lr))
    x_all, y_all, scale = train.x, train.y, train.scale
    batch, n = int(config.batch_size), len(y_all)
    g = torch.Generator().manual_seed(seed)
    order, pos = torch.randperm(n, generator=g), 0
    warm = steps // 10
    for step in range(steps):
        if step == warm:
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
        if pos + batch > n:
            order, pos = torch.randperm(n, generator=g), 0
        index = order[pos:pos + batch]
        pos += batch
        x = x_all[index].float()
        if scale is not None:
            x = x * scale
        x, y = x.to(device), y_all[index].to(device)
        loss = F.cross_entropy(net(x).reshape(len(x), -1), y)
        optim.zero_grad(set_to_none=True)
        loss.backward()
        optim.step()
        loss.item()
    return (steps - warm) * batch / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--resnet", action="store_true", help="ResNet18 on CIFAR-10-shaped data (GPU)")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    kwargs = settings(args.resnet, args.device)
    rates: dict[str, list[float]] = {"plain loop": [], "engine": [], "engine accelerate=true": []}
    for seed in range(args.repeats):  # interleaved, so drift in machine load hits every side alike
        rates["plain loop"].append(plain(args.steps, kwargs, seed))
        rates["engine"].append(engine(args.steps, kwargs, False, seed))
        rates["engine accelerate=true"].append(engine(args.steps, kwargs, True, seed))
    what = "ResNet18, CIFAR-10-shaped, batch 256" if args.resnet else "Digits MLP, batch 64"
    print(f"{what}, device {args.device}, {args.steps} steps, threads {args.threads}, "
          f"median of {args.repeats}:")
    median = {k: statistics.median(v) for k, v in rates.items()}
    for name, value in median.items():
        print(f"  {name:<24} {value:>12,.0f} images/s   (runs: {', '.join(f'{r:,.0f}' for r in rates[name])})")
    base = median["plain loop"]
    print(f"  ratio engine / plain loop:              {median['engine'] / base:.3f}  (target >= 1.0)")
    print(f"  ratio accelerate / plain loop:          {median['engine accelerate=true'] / base:.3f}")
    print(f"  ratio accelerate / engine:              {median['engine accelerate=true'] / median['engine']:.3f}")


if __name__ == "__main__":
    main()
