"""Data-loading throughput: the memory-mapped store with shared-RAM workers against torchvision's loader.

    .venv/bin/python benchmarks/dataload.py [--n 20000] [--batches 300] [--batch-size 256] [--workers 1]

Writes an MNIST-shaped dataset (``--n`` random 28×28 images) in the real idx format into a temporary
folder, then measures shuffled training batches per second, as float tensors in [0, 1]:

* ``torchvision DataLoader``: ``torchvision.datasets.MNIST`` with ``ToTensor`` through
  ``torch.utils.data.DataLoader(shuffle=True, num_workers=--workers)`` — the loader one writes by hand;
* ``engine, in RAM``: ``datasets.batches`` over the ``TensorData`` (the default path);
* ``memmap store, workers=0`` and ``memmap store, workers=N``: ``accelerate=true``'s path
  (``ML.envs.memmap``: the uint8 store opened with ``mmap_mode='r'``, batches gathered by N processes
  into shared memory). The store is built before timing (a one-off, reused by later runs).

Prints images/s of each and the ratios against torchvision's loader.
"""

from __future__ import annotations

import argparse
import gzip
import struct
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from ML.accelerate import AccelSettings
from ML.envs import datasets, memmap
from ML.envs.datasets import DatasetSettings
from ML.hyperparams import resolve_config


def write_mnist(root: Path, n: int) -> None:
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for prefix, count in (("train", n), ("t10k", max(n // 6, 10))):
        images = rng.integers(0, 256, (count, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, count, dtype=np.uint8)
        with gzip.open(raw / f"{prefix}-images-idx3-ubyte.gz", "wb") as f:
            f.write(struct.pack(">IIII", 2051, count, 28, 28) + images.tobytes())
        with gzip.open(raw / f"{prefix}-labels-idx1-ubyte.gz", "wb") as f:
            f.write(struct.pack(">II", 2049, count) + labels.tobytes())


def rate(stream, batches: int, batch_size: int) -> float:
    next(stream)  # start-up (worker processes, first epoch) is not counted
    start = time.perf_counter()
    for _ in range(batches):
        next(stream)
    return batches * batch_size / (time.perf_counter() - start)


def forever(loader):
    while True:
        yield from loader


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=20000)
    parser.add_argument("--batches", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(1)
    from torch.utils.data import DataLoader
    from torchvision import datasets as tv
    from torchvision.transforms import ToTensor

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_mnist(root, args.n)
        datasets._prepare_mnist(tv.MNIST, root)  # unpack the .gz files once, outside the timing
        loader = DataLoader(tv.MNIST(str(root), train=True, transform=ToTensor()), batch_size=args.batch_size,
                            shuffle=True, num_workers=args.workers, drop_last=True,
                            persistent_workers=args.workers > 0)
        results = {"torchvision DataLoader": rate(forever(loader), args.batches, args.batch_size)}
        config = resolve_config((), {"task": "classify", "Dataset": "MNIST", "dataset.root": str(root),
                                     "results": str(root / "results")})
        train, _, _ = datasets.load(DatasetSettings.from_config(config))
        results["engine, in RAM"] = rate(datasets.batches(train, args.batch_size), args.batches, args.batch_size)
        built = time.perf_counter()
        store, _, _ = datasets.load(DatasetSettings.from_config(config), memmap.store_for(
            AccelSettings.from_config({**config, "accelerate": True}), config.results))
        build = time.perf_counter() - built
        size = sum(p.stat().st_size for p in store.folder.iterdir())
        for workers in sorted({0, args.workers}):
            stream = memmap.SharedBatches(store, args.batch_size, workers=workers)
            try:
                results[f"memmap store, workers={workers}"] = rate(stream, args.batches, args.batch_size)
            finally:
                stream.close()
    print(f"MNIST-shaped ({args.n} images), batch {args.batch_size}, {args.batches} batches, "
          f"loader workers {args.workers}; store built in {build:.2f} s, {size / 1e6:.1f} MB on disk:")
    base = results["torchvision DataLoader"]
    for name, value in results.items():
        print(f"  {name:<26} {value:>12,.0f} images/s   ratio vs torchvision {value / base:8.2f}")


if __name__ == "__main__":
    main()
