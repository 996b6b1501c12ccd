"""The memory-mapped dataset store (``cached``) and the shared-RAM batch workers (``SharedBatches``) of
``accelerate=true``: one on-disk copy of a dataset that every process and run shares."""

from __future__ import annotations

import hashlib
import json
import mmap
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ML.accelerate import AccelSettings
from ML.envs.tensordata import EpochOrder, TensorData

VERSION = 1
_SCALES = (1 / 255, 1 / 16, 1.0)


# ---------------------------------------------------------------- the store


def store_key(name: str, args: dict[str, Any]) -> str:
    """``<name>-<hash>``: one store per dataset and ``dataset.*`` arguments (never per run seed)."""
    clean = {k: v for k, v in sorted(args.items()) if k not in ("download",)}
    if clean.get("root") is not None:
        clean["root"] = str(Path(os.path.expanduser(str(clean["root"]))).absolute())
    blob = json.dumps({"name": name, "args": clean, "version": VERSION}, sort_keys=True, default=str)
    return f"{name}-{hashlib.sha1(blob.encode()).hexdigest()[:12]}"


def as_uint8(x: torch.Tensor, scale: float | None) -> tuple[np.ndarray, float | None]:
    """``(array, scale)`` with ``array * scale == x`` exactly: uint8 when possible, else float32."""
    if x.dtype == torch.uint8:
        return x.numpy(), scale
    if scale is None and x.is_floating_point():
        values = x.float()
        for s in _SCALES:
            k = torch.round(values / s)
            if k.min() >= 0 and k.max() <= 255 and torch.equal(k * s, values):
                return k.to(torch.uint8).numpy(), s
    return x.float().numpy(), scale


def write_store(folder: Path, train: TensorData, test: TensorData) -> Path:
    """Write a store atomically (temporary folder, then rename); an existing store is kept as it is."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        meta: dict[str, Any] = {"version": VERSION, "classes": getattr(train, "classes", None)}
        for split, data in (("train", train), ("test", test)):
            x, scale = as_uint8(data.x, data.scale)
            np.save(tmp / f"{split}_x.npy", np.ascontiguousarray(x))
            np.save(tmp / f"{split}_y.npy", data.y.numpy().astype(np.int64))
            meta[f"{split}_scale"] = scale
            meta[f"{split}_shape"] = list(x.shape)
            meta[f"{split}_dtype"] = str(x.dtype)
        (tmp / "meta.json").write_text(json.dumps(meta, default=str))
        try:
            os.rename(tmp, folder)
        except OSError:  # another process finished the same store first: keep theirs
            if not (folder / "meta.json").is_file():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return folder


class MemmapData(TensorData):
    """One split of a store: inputs memory-mapped from disk, labels in RAM; ``take`` as ``TensorData``'s."""

    def __init__(self, folder: str | Path, split: str):
        self.folder, self.split = Path(folder).absolute(), split
        meta = json.loads((self.folder / "meta.json").read_text())
        self.xm = np.load(self.folder / f"{split}_x.npy", mmap_mode="r")
        self.y = torch.from_numpy(np.load(self.folder / f"{split}_y.npy"))
        self.scale = meta[f"{split}_scale"]
        if meta.get("classes") is not None:
            self.classes = list(meta["classes"])

    @property
    def x(self) -> torch.Tensor:  # type: ignore[override]
        """All inputs as a tensor (reads the whole split; ``take`` reads only a batch)."""
        return torch.from_numpy(np.array(self.xm))

    def __len__(self) -> int:
        return len(self.y)

    def gather(self, index: Any) -> np.ndarray:
        if isinstance(index, torch.Tensor):
            index = index.numpy()
        return np.array(self.xm[index])  # a copy in RAM (fancy indexing copies; slices are views)

    def take(self, index: Any) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.from_numpy(self.gather(index)).float()
        if self.scale is not None:
            x = x * self.scale
        return x, self.y[index]

    def subset(self, index: torch.Tensor) -> TensorData:
        return TensorData(torch.from_numpy(self.gather(index)), self.y[index], self.scale,
                          getattr(self, "classes", None))

    def __reduce__(self) -> Any:  # pickled as its location, never as its data
        return (MemmapData, (str(self.folder), self.split))


def cached(name: str, args: dict[str, Any], cache_root: str | Path, build: Any) -> tuple[Any, Any]:
    """The store's (train, test), built from ``build()`` the first time; other datasets pass through.

    A built-in classification dataset (``Digits``, ``MNIST``, ``FashionMNIST``, ``CIFAR10``,
    ``ImageFolder``) is converted once into ``<results>/.cache/datasets/<name>-<hash>/``::

        meta.json                       {"scale": 1/255, "classes": [...], "shape": [...], ...}
        train_x.npy  train_y.npy        inputs as uint8 (N, C, H, W), labels int64
        test_x.npy   test_y.npy

    ``<hash>`` covers the dataset's name and its ``dataset.*`` arguments (root, split seed, ...), not the run
    seed, so every run and seed of a task reuses one store. The store is written into a temporary folder and
    renamed into place (a concurrent or interrupted build never leaves a half store); it is opened with
    ``np.load(mmap_mode="r")``: the inputs stay on disk and in the OS page cache, which is the one copy every
    process reading them shares. Inputs are stored as uint8 whenever they are exactly ``k * scale`` for a
    ``scale`` of 1/255 or 1/16 (Digits) — the round trip is exact — and as float32 otherwise. The extra disk
    use is the size of the uint8 arrays: ~55 MB for MNIST, ~180 MB for CIFAR-10, ~0.1 MB for Digits.
    """
    folder = Path(cache_root) / "datasets" / store_key(name, args)
    if not (folder / "meta.json").is_file():
        train, test = build()
        if not (isinstance(train, TensorData) and isinstance(test, TensorData)):
            return train, test  # not an in-memory array dataset (e.g. with transforms): nothing to store
        write_store(folder, train, test)
    return MemmapData(folder, "train"), MemmapData(folder, "test")


def store_for(accel: AccelSettings, results: str | None) -> Any:
    """The store ``datasets.load`` takes built-in datasets from: this one (under the run's ``results`` folder)
    under ``accelerate=true``, else None."""
    if not accel.accelerate:
        return None
    cache = Path(str(results or "results")) / ".cache"
    return lambda name, args, build: cached(name, args, cache, build)


# ---------------------------------------------------------------- shared memory


def shared_zeros(shape: Any, dtype: Any) -> np.ndarray:
    """A zeroed numpy array in anonymous shared memory (``MAP_SHARED``): forked processes see one copy
    (``Replay(shared=True)`` keeps its RAM arrays there, so a sampler process reads the same copy)."""
    dtype = np.dtype(dtype)
    shape = tuple(int(s) for s in (shape if isinstance(shape, (tuple, list)) else (shape,)))
    count = int(np.prod(shape)) if shape else 1
    buffer = mmap.mmap(-1, max(count * dtype.itemsize, 1))
    return np.frombuffer(buffer, dtype=dtype, count=count).reshape(shape)


# ---------------------------------------------------------------- batch workers


def default_workers(batch_bytes: int) -> int:
    """Workers pay for their hand-off (a queue round trip) only when a batch is big to gather: below ~1 MB
    (Digits' 4 KB, MNIST's 50 KB) the calling process gathers; above, up to 4 workers, leaving a core."""
    if batch_bytes < 1 << 20:
        return 0
    return max(1, min(4, (os.cpu_count() or 2) - 1))


def _worker(folder: str, split: str, slots_x: torch.Tensor, slots_y: torch.Tensor, tasks: Any,
            done: Any) -> None:
    torch.set_num_threads(1)
    xm = np.load(Path(folder) / f"{split}_x.npy", mmap_mode="r")
    y = np.load(Path(folder) / f"{split}_y.npy")
    out_x, out_y = slots_x.numpy(), slots_y.numpy()
    while True:
        task = tasks.get()
        if task is None:
            return
        seq, slot, index = task
        n = len(index)
        out_x[slot, :n] = xm[index]
        out_y[slot, :n] = y[index]
        done.put((seq, slot))


class SharedBatches:
    """Shuffled training batches from a ``MemmapData``, gathered by worker processes; the same batches, in
    the same order, as ``datasets.batches`` with the same generator.

    ``SharedBatches`` serves the same batches as ``datasets.Batches`` (the same permutation from
    the same generator), but the gathering is done by ``workers`` processes: each reads the memory map (no
    per-worker copy of the dataset) and writes its batch into a ring of shared-memory slots
    (``Tensor.share_memory_()``); the main process turns a finished slot into the float batch (pinned when the
    batch goes to a GPU) while the next ones are being gathered. Under DistributedDataParallel each rank takes
    its own slice of every global batch.

    ``shard=(rank, world)``: the permutation walks global batches of ``batch_size × world`` and this rank
    gets its ``batch_size`` slice. ``workers=0`` gathers in the calling process. Batches are planned up to
    ``2 × workers`` ahead; ``state()`` is the order as it stood before the next batch to be consumed, so a
    resume serves exactly the batches an uninterrupted run would.
    """

    def __init__(self, dataset: MemmapData, batch_size: int, generator: torch.Generator | None = None,
                 workers: int = 1, shard: tuple[int, int] = (0, 1), pin: bool = False):
        self.dataset, self.batch_size = dataset, int(batch_size)
        self.rank, self.world = int(shard[0]), int(shard[1])
        self.global_batch = self.batch_size * self.world
        self.size = len(dataset)
        self.generator = generator if generator is not None else torch.Generator().manual_seed(0)
        self.workers, self.pin = int(workers), bool(pin)
        self.epoch = self.samples = 0
        self._order = EpochOrder(self.size, self.global_batch, self.generator)
        self._seq = self._next = 0
        self._ready: dict[int, int] = {}
        self._pending: dict[int, tuple[int, bool]] = {}  # seq -> (rows, ends an epoch)
        self._marks: dict[int, dict[str, Any]] = {}  # seq -> the order's state before planning it
        self._free: list[int] = []
        self._procs: list[Any] = []

    def _plan(self) -> tuple[np.ndarray, bool]:
        """The next batch's indices (this rank's slice) and whether it ends an epoch."""
        index, ends = self._order.next()
        if self.world > 1:
            index = index[self.rank * self.batch_size:(self.rank + 1) * self.batch_size]
        return index.numpy(), ends

    def _start(self) -> None:
        import torch.multiprocessing as mp

        slots = 2 * self.workers
        shape = (slots, self.batch_size, *self.dataset.xm.shape[1:])
        self._x = torch.from_numpy(np.zeros(shape, self.dataset.xm.dtype)).share_memory_()
        self._y = torch.zeros((slots, self.batch_size), dtype=torch.long).share_memory_()
        method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
        ctx = mp.get_context(method)
        self._tasks, self._done = ctx.Queue(), ctx.Queue()
        for _ in range(self.workers):
            proc = ctx.Process(target=_worker, args=(str(self.dataset.folder), self.dataset.split,  # type: ignore[attr-defined]
                                                     self._x, self._y, self._tasks, self._done), daemon=True)
            proc.start()
            self._procs.append(proc)
        self._free = list(range(slots))

    def _schedule(self) -> None:
        while self._free:
            slot = self._free.pop()
            self._marks[self._seq] = self._order.state()
            index, ends = self._plan()
            self._pending[self._seq] = (len(index), ends)
            self._tasks.put((self._seq, slot, index))
            self._seq += 1

    def _finish(self, x: torch.Tensor, y: torch.Tensor, ends: bool) -> tuple[torch.Tensor, torch.Tensor]:
        x = x.float()
        if self.dataset.scale is not None:
            x = x * self.dataset.scale
        if self.pin:
            x, y = x.pin_memory(), y.pin_memory()
        self.epoch += ends
        self.samples += len(y)
        return x, y

    def __iter__(self) -> SharedBatches:
        return self

    def __next__(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self.workers <= 0:
            index, ends = self._plan()
            return self._finish(torch.from_numpy(self.dataset.gather(index)), self.dataset.y[index], ends)
        if not self._procs:
            self._start()
        self._schedule()
        while self._next not in self._ready:
            seq, slot = self._done.get(timeout=300)
            self._ready[seq] = slot
        slot = self._ready.pop(self._next)
        rows, ends = self._pending.pop(self._next)
        self._marks.pop(self._next, None)
        self._next += 1
        batch = self._finish(self._x[slot, :rows], self._y[slot, :rows].clone(), ends)  # copies: slot is free
        self._free.append(slot)
        return batch

    def state(self) -> dict[str, Any]:
        order = self._marks.get(self._next) or self._order.state()
        return {**order, "epoch": self.epoch, "samples": self.samples}

    def load_state(self, state: dict[str, Any]) -> None:
        """Continue from ``state()`` (before the first batch is planned)."""
        self._order.load_state(state)
        self.epoch, self.samples = int(state["epoch"]), int(state["samples"])

    def close(self) -> None:
        for _ in self._procs:
            self._tasks.put(None)
        for proc in self._procs:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.terminate()
        self._procs = []

    def __del__(self) -> None:
        try:
            self.close()
        except (AttributeError, OSError, ValueError):  # half-built, or queues already closed at interpreter exit
            pass


__all__ = ["MemmapData", "SharedBatches", "cached", "default_workers", "shared_zeros", "store_for", "store_key",
           "write_store"]
