"""Datasets as environments: ``Dataset=`` names a training set and a held-out test set.

``load(DatasetSettings) -> (train, test, spec)``; ``batches(dataset, batch_size, generator)`` streams shuffled
training batches forever (``.epoch`` counts completed epochs); ``iterate(dataset, batch_size)`` is one
ordered pass (evaluation)."""

from __future__ import annotations

import dataclasses
import functools
import gzip
import hashlib
import importlib.util
import inspect
import os
import shutil
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset as TorchDataset

from ML.envs.base import TaskSpec
from ML.envs.tensordata import EpochOrder, TensorData
from ML.errors import UserError
from ML.hyperparams.paths import resolve
from ML.settings import Settings


@dataclasses.dataclass(frozen=True)
class DatasetSettings(Settings):
    """A dataset as the task: what to train and test on, and how its inputs are prepared."""

    Dataset: Any                    # Digits, MNIST, CIFAR10, ImageFolder, or MyFile.MyDataset (null: none)
    dataset: Mapping[str, Any]      # its arguments
    TestDataset: Any                # a separate test set (null: the Dataset's own split)
    testdataset: Mapping[str, Any]  # its arguments
    norm: bool                      # normalize inputs by the training set's per-channel mean/std
    generate: bool                  # a generative task (labels ignored)

BUILTIN_DATASETS = ("Digits", "MNIST", "FashionMNIST", "CIFAR10", "ImageFolder")
_TORCHVISION = {"MNIST", "FashionMNIST", "CIFAR10"}


def default_root() -> str:
    """Where torchvision datasets are looked for: ``$ML_DATASETS`` or ``./datasets``."""
    return os.environ.get("ML_DATASETS") or "datasets"


def _stratified_split(y: np.ndarray, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Train/test indices with every class split in the same proportion, fixed by ``seed``."""
    rng = np.random.RandomState(seed)
    train, test = [], []
    for label in np.unique(y):
        index = np.flatnonzero(y == label)
        rng.shuffle(index)
        cut = int(round(len(index) * test_fraction))
        test.append(index[:cut])
        train.append(index[cut:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


@functools.lru_cache(maxsize=1)
def _digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's shipped digits file, read as ``load_digits`` reads it (without importing sklearn)."""
    found = importlib.util.find_spec("sklearn")
    folder = Path(found.origin).parent if found and found.origin else Path("/nonexistent")
    path = folder / "datasets" / "data" / "digits.csv.gz"
    if path.is_file():
        data = np.loadtxt(path, delimiter=",")
        return data[:, :-1].reshape(-1, 8, 8), data[:, -1].astype(np.int64)
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise UserError("Dataset=Digits needs scikit-learn: pip install scikit-learn") from None
    digits = load_digits()
    return np.asarray(digits.images, dtype=np.float64), np.asarray(digits.target, dtype=np.int64)


class Digits(TensorData):
    """scikit-learn's handwritten digits: 1797 images (1, 8, 8) in [0, 1], 10 classes, offline."""

    def __init__(self, train: bool = True, test_fraction: float = 0.2, split_seed: int = 0):
        pixels, labels = _digits_arrays()
        images = torch.as_tensor(pixels, dtype=torch.float32).unsqueeze(1) / 16.0
        train_index, test_index = _stratified_split(labels, float(test_fraction), int(split_seed))
        index = torch.as_tensor(train_index if train else test_index)
        super().__init__(images[index], torch.as_tensor(labels)[index], None, list(range(10)))
        self.train = train
        self.index = index  # positions in scikit-learn's load_digits() order


_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm")


class ImageFolder(TensorData):
    """Images in a folder: ``root/<class>/*.png`` (one class per subfolder, sorted names), or a flat
    ``root/*.png`` (one class, label 0 — e.g. CelebA's ``img_align_celeba/`` for generative models).

    Images are read once into memory as uint8, converted to ``mode`` (``RGB`` or ``L``; default: the first
    image's) and resized to ``size`` (an int or [H, W]; default: the first image's size), then split into
    train/test by ``test_fraction`` / ``split_seed`` (stratified by class). ``limit`` caps the number of
    images read (sorted order), for quick runs on big folders.
    """

    def __init__(self, root: str, train: bool = True, size: Any = None, mode: str | None = None,
                 test_fraction: float = 0.2, split_seed: int = 0, limit: int | None = None):
        from PIL import Image

        folder = Path(os.path.expanduser(str(root)))
        if not folder.is_dir():
            raise UserError(f"Dataset=ImageFolder: dataset.root={root} is not a folder; point it at a folder "
                            "of images (root/<class>/*.png or root/*.png)")
        classes = sorted(d.name for d in folder.iterdir() if d.is_dir() and not d.name.startswith("."))
        if classes:
            files = [(f, k) for k, name in enumerate(classes) for f in sorted((folder / name).rglob("*"))
                     if f.suffix.lower() in _IMAGE_SUFFIXES]
        else:
            classes = [folder.name]
            files = [(f, 0) for f in sorted(folder.iterdir()) if f.suffix.lower() in _IMAGE_SUFFIXES]
        if limit:
            files = files[: int(limit)]
        if not files:
            raise UserError(f"Dataset=ImageFolder: no images ({', '.join(_IMAGE_SUFFIXES)}) under {folder}")
        first = Image.open(files[0][0])
        mode = mode or ("L" if first.mode in ("L", "1", "I", "I;16", "F") else "RGB")
        hw: tuple[int, ...]
        if size is None:
            hw = (first.height, first.width)
        else:
            hw = (int(size), int(size)) if isinstance(size, (int, float)) else tuple(int(v) for v in size)
        images = np.empty((len(files), 1 if mode == "L" else 3, *hw), dtype=np.uint8)
        for i, (path, _) in enumerate(files):
            with Image.open(path) as opened:
                image = opened.convert(mode)
                if (image.height, image.width) != hw:
                    image = image.resize((hw[1], hw[0]), Image.Resampling.BILINEAR)
                array = np.asarray(image, dtype=np.uint8)
            images[i] = array[None] if array.ndim == 2 else array.transpose(2, 0, 1)
        labels = np.asarray([k for _, k in files], dtype=np.int64)
        train_index, test_index = _stratified_split(labels, float(test_fraction), int(split_seed))
        index = torch.as_tensor(train_index if train else test_index)
        super().__init__(torch.from_numpy(images)[index], torch.from_numpy(labels)[index], 1 / 255, classes)
        self.train = train


def __getattr__(name: str) -> Any:
    """``MNIST``, ``FashionMNIST``, ``CIFAR10``: torchvision's classes, imported on first use."""
    if name in _TORCHVISION:
        import torchvision.datasets

        return getattr(torchvision.datasets, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# ---------------------------------------------------------------- torchvision files


def _md5(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _prepare_mnist(cls: Any, root: Path) -> None:
    """Unpack ``.gz`` idx files in place (what torchvision's download step would do), or explain."""
    raw = root / cls.__name__ / "raw"
    names = [Path(url).name for url, _ in cls.resources]
    missing = []
    for name in names:
        plain = raw / name.removesuffix(".gz")
        if plain.is_file():
            continue
        packed = raw / name
        if packed.is_file():
            tmp = plain.with_name(plain.name + ".tmp")
            with gzip.open(packed, "rb") as src, open(tmp, "wb") as dst:
                shutil.copyfileobj(src, dst)
            tmp.replace(plain)
        else:
            missing.append(plain.name)
    if missing:
        raise UserError(
            f"{cls.__name__} files not found under {raw}: place {', '.join(n + '(.gz)' for n in missing)} "
            f"there, or pass dataset.download=true where a network is available")


def _prepare_cifar(cls: Any, root: Path) -> None:
    """Unpack a verified ``cifar-10-python.tar.gz`` if only the archive is there, or explain."""
    folder = root / cls.base_folder
    files = [name for name, _ in cls.train_list + cls.test_list] + [cls.meta["filename"]]
    archive = root / cls.filename
    if not all((folder / f).is_file() for f in files) and archive.is_file():
        if _md5(archive) != cls.tgz_md5:
            raise UserError(f"{archive} is corrupted (md5 mismatch); delete it and place the original "
                            "archive there")
        from torchvision.datasets.utils import extract_archive

        extract_archive(str(archive), str(root))
    missing = [f for f in files if not (folder / f).is_file()]
    if missing:
        raise UserError(
            f"{cls.__name__} files not found under {folder}: place {', '.join(missing)} there (from "
            f"{cls.filename}), or pass dataset.download=true where a network is available")
    checks = cls.train_list + cls.test_list + [[cls.meta["filename"], cls.meta["md5"]]]
    for name, md5 in checks:
        if _md5(folder / name) != md5:
            raise UserError(f"{cls.__name__} file {folder / name} is corrupted (md5 differs from the "
                            f"original's); replace it with the original file")


def _is_torchvision(target: Any) -> bool:
    """A torchvision dataset class, or a subclass of one (built with root/train/download)."""
    return inspect.isclass(target) and any(c.__module__.startswith("torchvision.datasets")
                                           for c in target.__mro__)


def _torchvision_split(cls: type, args: dict[str, Any], train: bool) -> Any:
    root = Path(os.path.expanduser(str(args.pop("root", None) or default_root()))).absolute()
    download = bool(args.pop("download", False))
    from torchvision.datasets import CIFAR10
    from torchvision.datasets import MNIST as TorchMNIST

    if not download:
        if issubclass(cls, TorchMNIST) and hasattr(cls, "resources"):
            _prepare_mnist(cls, root)
        elif issubclass(cls, CIFAR10):
            _prepare_cifar(cls, root)
    params = inspect.signature(cls).parameters
    kwargs = dict(args)
    if "train" in params:
        kwargs["train"] = train
    if "download" in params:
        kwargs["download"] = download
    if "root" in params:  # FakeData and the like have no files: their first argument is not a root
        kwargs["root"] = str(root)
    try:
        return cls(**kwargs)
    except RuntimeError as e:
        if "not found" in str(e).lower() or "corrupted" in str(e).lower():
            raise UserError(f"{cls.__name__} files not found under {root}: place the original files there, "
                            f"or pass dataset.download=true where a network is available") from None
        raise
    except TypeError as e:
        raise UserError(f"could not build Dataset={cls.__name__}: {e}") from None


def _fast(dataset: Any) -> Any:
    """torchvision datasets whose arrays are in memory become ``TensorData`` (no per-item PIL)."""
    if not _is_torchvision(type(dataset)):
        return dataset
    if any(getattr(dataset, t, None) is not None for t in ("transform", "target_transform")):
        return dataset
    from torchvision.datasets import CIFAR10
    from torchvision.datasets import MNIST as TorchMNIST

    classes = getattr(dataset, "classes", None)
    if isinstance(dataset, TorchMNIST):
        x = torch.as_tensor(dataset.data).unsqueeze(1)
        return TensorData(x, torch.as_tensor(dataset.targets), 1 / 255, classes)
    if isinstance(dataset, CIFAR10):
        x = torch.as_tensor(np.ascontiguousarray(dataset.data.transpose(0, 3, 1, 2)))
        return TensorData(x, torch.as_tensor(np.asarray(dataset.targets)), 1 / 255, classes)
    return dataset


# ---------------------------------------------------------------- items and batches


def to_input(x: Any) -> torch.Tensor:
    """One input as a float32 tensor: PIL → channels-first [0, 1]; uint8 → [0, 1]; else as a float."""
    if isinstance(x, torch.Tensor):
        return x.float() / 255 if x.dtype == torch.uint8 else x.float()
    if isinstance(x, np.ndarray):
        return torch.from_numpy(x.astype(np.float32) / 255 if x.dtype == np.uint8 else x.astype(np.float32))
    if hasattr(x, "getbands"):  # a PIL image
        from torchvision.transforms.functional import to_tensor

        return to_tensor(x)
    try:
        return torch.as_tensor(x, dtype=torch.float32)
    except (TypeError, ValueError, RuntimeError):
        raise UserError(f"dataset inputs must be tensors, arrays or images, not {type(x).__name__}") from None


def to_label(y: Any) -> int:
    try:
        value = float(y.item() if hasattr(y, "item") else y)
    except (TypeError, ValueError, RuntimeError):
        raise UserError(f"dataset labels must be integer classes, not {y!r}") from None
    if not value.is_integer() or value < 0:
        raise UserError(f"dataset labels must be integer classes ≥ 0, not {y!r}")
    return int(value)


def _item(item: Any) -> tuple[torch.Tensor, int]:
    if not isinstance(item, (tuple, list)) or len(item) < 2:
        raise UserError(f"dataset items must be (input, label) pairs, not {type(item).__name__}")
    return to_input(item[0]), to_label(item[1])


def collate(items: list[Any]) -> tuple[torch.Tensor, torch.Tensor]:
    pairs = [_item(item) for item in items]
    return torch.stack([x for x, _ in pairs]), torch.tensor([y for _, y in pairs], dtype=torch.long)


class Batches(Iterator):
    """Shuffled training batches forever; ``epoch`` counts completed passes; ``samples`` counts inputs.

    The order comes from ``EpochOrder`` (one ``randperm`` per epoch from ``generator``); a ``TensorData``
    is indexed directly, any other dataset item by item. ``state()`` / ``load_state`` resume mid-epoch.
    """

    def __init__(self, dataset: Any, batch_size: int, generator: torch.Generator | None = None):
        self.dataset, self.batch_size = dataset, int(batch_size)
        if self.batch_size <= 0:
            raise UserError(f"batch_size must be > 0, not {batch_size}")
        self.size = len(dataset)
        if self.size == 0:
            raise UserError("the training set is empty")
        self.generator = generator if generator is not None else torch.Generator().manual_seed(0)
        self.epoch = 0
        self.samples = 0
        self._order = EpochOrder(self.size, self.batch_size, self.generator)

    def __next__(self) -> tuple[torch.Tensor, torch.Tensor]:
        index, ends = self._order.next()
        self.epoch += ends
        if isinstance(self.dataset, TensorData):
            batch = self.dataset.take(index)
        else:
            batch = collate([self.dataset[i] for i in index.tolist()])
        self.samples += len(batch[1])
        return batch

    def state(self) -> dict[str, Any]:
        return {**self._order.state(), "epoch": self.epoch, "samples": self.samples}

    def load_state(self, state: dict[str, Any]) -> None:
        self._order.load_state(state)
        self.epoch, self.samples = int(state["epoch"]), int(state["samples"])


def batches(dataset: Any, batch_size: int, generator: torch.Generator | None = None) -> Batches:
    """An endless iterator of shuffled ``(x float32, y int64)`` batches with an ``epoch`` counter."""
    return Batches(dataset, batch_size, generator)


def iterate(dataset: Any, batch_size: int = 1024) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """One ordered pass over ``dataset`` in batches (evaluation)."""
    if isinstance(dataset, TensorData):
        for start in range(0, len(dataset), batch_size):
            yield dataset.take(slice(start, start + batch_size))
        return
    from torch.utils.data import DataLoader

    yield from DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=collate)


# ---------------------------------------------------------------- load


def _name(named: Any, target: Any) -> str:
    if isinstance(named, str) and named in BUILTIN_DATASETS:
        return named
    if inspect.isclass(target) or inspect.isfunction(target):
        return target.__name__
    return type(target).__name__


def _resolve(named: Any) -> Any:
    if isinstance(named, str) and "." not in named and named not in BUILTIN_DATASETS:
        raise UserError(f"unknown Dataset {named!r}: use a built-in ({', '.join(BUILTIN_DATASETS)}), "
                        f"MyFile.MyDataset, or a torch Dataset class passed in code")
    return resolve(named, "Dataset")


def _split(dataset: Any, test_fraction: float, seed: int) -> tuple[Any, Any]:
    """A fixed, seeded train/test split of a dataset with no train/test notion."""
    n = len(dataset)
    if not 0 < test_fraction < 1:
        raise UserError(f"dataset.test_fraction must be between 0 and 1, not {test_fraction}")
    n_test = max(1, int(round(n * test_fraction)))
    if n - n_test < 1:
        raise UserError(f"the dataset has {n} items: too few to split off a test set")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    train_index, test_index = order[n_test:].sort().values, order[:n_test].sort().values
    if isinstance(dataset, TensorData):
        return dataset.subset(train_index), dataset.subset(test_index)
    from torch.utils.data import Subset

    return Subset(dataset, train_index.tolist()), Subset(dataset, test_index.tolist())


def _call(cls: Any, args: dict[str, Any], label: str) -> Any:
    try:
        return cls(**args)
    except TypeError as e:
        raise UserError(f"could not build Dataset={label}: {e}; fix the dataset.* arguments") from None


def _parameters(target: Any) -> dict[str, inspect.Parameter]:
    if not callable(target):
        return {}
    try:
        return dict(inspect.signature(target).parameters)
    except (TypeError, ValueError):
        return {}


def _build(named: Any, target: Any, args: dict[str, Any]) -> tuple[Any, Any]:
    """The (train, test) pair for any form ``Dataset=`` takes."""
    label = _name(named, target)
    split_seed = int(args.pop("split_seed", 0))
    test_fraction = float(args.pop("test_fraction", 0.2))
    params = _parameters(target)
    for key, value in (("split_seed", split_seed), ("test_fraction", test_fraction)):
        if key in params:  # the engine's option is also the class's own argument: it gets it verbatim
            args[key] = value
    if _is_torchvision(target):
        if "train" in params:
            return (_fast(_torchvision_split(target, dict(args), True)),
                    _fast(_torchvision_split(target, dict(args), False)))
        return _split(_fast(_torchvision_split(target, dict(args), True)), test_fraction, split_seed)
    if isinstance(target, TorchDataset) or (not callable(target) and hasattr(target, "__getitem__")):
        if args:
            raise UserError(f"Dataset={label} is an object given as is; it takes no dataset.* arguments "
                            f"({', '.join(args)})")
        return _split(target, test_fraction, split_seed)
    if not callable(target):
        raise UserError(f"Dataset={label} is neither a dataset class nor a dataset")
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    for key in ("root", "download"):  # file locations mean nothing to a dataset that has no files
        if key in args and key not in params and not takes_any:
            del args[key]
    unknown = [k for k in args if k not in params and not takes_any]
    if params and unknown:
        accepted = ", ".join(p for p in params if p != "self") or "nothing"
        raise UserError(f"Dataset={label} does not take argument {unknown[0]!r} (it takes: {accepted}); "
                        "fix the key")
    if "train" in params:
        train = _call(target, {**args, "train": True}, label)
        test = _call(target, {**args, "train": False}, label)
        return _fast(train), _fast(test)
    return _split(_fast(_call(target, args, label)), test_fraction, split_seed)


def _labels(dataset: Any) -> torch.Tensor:
    if isinstance(dataset, TensorData):
        return dataset.y
    base, index = dataset, None
    from torch.utils.data import Subset

    if isinstance(dataset, Subset):
        base, index = dataset.dataset, list(dataset.indices)
    targets = getattr(base, "targets", None)
    if targets is not None and getattr(base, "target_transform", None) is None:
        try:
            labels = torch.as_tensor(np.asarray(targets)).long().flatten()
            return labels[index] if index is not None else labels
        except (TypeError, ValueError, RuntimeError):
            pass
    return torch.tensor([to_label(dataset[i][1]) for i in range(len(dataset))], dtype=torch.long)


def _num_classes(train: Any, test: Any, given: Any) -> int:
    if given is not None:
        return int(given)
    for dataset in (train, getattr(train, "dataset", None)):
        classes = getattr(dataset, "classes", None)
        if classes is not None and not callable(classes):
            try:
                if len(classes) > 0:
                    return len(classes)
            except TypeError:
                pass
    top = max(int(_labels(d).max()) for d in (train, test) if len(d))
    return top + 1


def channel_stats(dataset: Any, key: str, cache: Path | None = None) -> dict[str, list[float]]:
    """Per-channel mean and std of a training set's inputs (one pass), cached as JSON under ``cache``.

    Inputs shaped (C, H, W) get one statistic per channel; any other shape one overall statistic.
    """
    import json

    path = cache / f"norm-{key}.json" if cache is not None else None
    if path is not None and path.is_file():
        try:
            stats = json.loads(path.read_text())
            if isinstance(stats, dict) and {"mean", "std"} <= set(stats):
                return stats
        except (OSError, ValueError):
            pass
    total: Any = None
    total_sq: Any = None
    count = 0
    for x, _ in iterate(dataset, 1024):
        x = x.double()
        dims = [0, 2, 3] if x.dim() == 4 else list(range(x.dim()))
        s, sq = x.sum(dims), (x * x).sum(dims)
        total = s if total is None else total + s
        total_sq = sq if total_sq is None else total_sq + sq
        count += x.numel() // max(s.numel(), 1)
    mean = total / count
    std = (total_sq / count - mean * mean).clamp_min(0).sqrt()
    stats = {"mean": [float(v) for v in mean.flatten()], "std": [float(v) for v in std.flatten()]}
    if path is not None:
        from ML.fileio import write_json

        path.parent.mkdir(parents=True, exist_ok=True)
        write_json(path, stats)
    return stats


def _test_override(data: DatasetSettings) -> Any:
    """``TestDataset=`` (with ``testdataset.*``): a separate evaluation set replacing the split's test set."""
    test_spec = data.TestDataset
    if test_spec is None:
        return None
    args = dict(data.testdataset or {})
    target = _resolve(test_spec)
    if _is_torchvision(target):
        return _fast(_torchvision_split(target, args, False))
    if isinstance(target, TorchDataset) or not callable(target):
        return target
    params = inspect.signature(target).parameters
    if "train" in params:
        args.setdefault("train", False)
    return _fast(_call(target, args, _name(test_spec, target)))


def load(data: DatasetSettings, store: Callable[..., tuple[Any, Any]] | None = None,
         cache: Path | None = None) -> tuple[Any, Any, TaskSpec]:
    """The training set, the test set and the task's spec for ``Dataset`` / ``dataset.*``.

    What ``Dataset=`` takes:

    * ``Digits`` — scikit-learn's 8×8 digits (shipped with scikit-learn, offline): 1797 images (1, 8, 8) in
      [0, 1], 10 classes, a stratified 80/20 train/test split fixed by ``dataset.split_seed`` (default 0,
      independent of the run seed, so every run shares one test set).
    * ``MNIST``, ``FashionMNIST``, ``CIFAR10`` — torchvision's own loaders, reading the original files under
      ``dataset.root`` (default: ``$ML_DATASETS`` if set, else ``datasets/`` in the working directory):
      ``<root>/MNIST/raw/train-images-idx3-ubyte`` ... (``.gz`` files are unpacked in place) and
      ``<root>/cifar-10-batches-py/data_batch_1`` ... (or ``<root>/cifar-10-python.tar.gz``, unpacked).
      CIFAR-10 files are verified against torchvision's md5 sums. Nothing downloads unless
      ``dataset.download=true``.
    * a torchvision dataset class (``ML.launch(Dataset=torchvision.datasets.MNIST)``), built with
      ``root``, ``train=True/False`` and ``download`` as above;
    * a ``torch.utils.data.Dataset`` class or instance (``Dataset=MyFile.MyDataset``), built with the
      ``dataset.*`` arguments (plus ``train=True/False`` when its signature takes ``train``). Without a
      train/test notion a fixed ``dataset.test_fraction`` (default 0.2) is split off with
      ``dataset.split_seed``.

    Items are ``(x, y)``: ``x`` a tensor, array or PIL image (PIL and uint8 arrays become floats in [0, 1],
    PIL channels first, as torchvision's ``ToTensor``); ``y`` an integer class. The number of classes comes
    from ``dataset.num_classes``, else a ``classes`` attribute, else the largest label + 1.

    ``store(name, args, build)``: where a built-in dataset's (train, test) come from instead of ``build()``
    (the driver passes ``memmap.store_for(accel, results)``: the memory-mapped store under ``accelerate=true``).

    ``TestDataset=`` replaces the test set; ``generate=true`` makes a generative task (suite ``Generate``,
    labels ignored, one class allowed); ``norm=true`` records the training set's per-channel mean/std in
    ``spec.info["norm"]`` (computed once, cached in ``cache``: the run's ``<results>/.cache/``, by default
    ``results/.cache/``).
    """
    if cache is None:
        cache = Path("results") / ".cache"
    named = data.Dataset
    if named is None:
        raise UserError(f"no Dataset: set Dataset=... ({', '.join(BUILTIN_DATASETS)} or MyFile.MyDataset)")
    args = dict(data.dataset or {})
    target = _resolve(named)
    num_classes = args.get("num_classes")
    if "num_classes" not in _parameters(target):  # the engine's option, unless the class takes it (FakeData)
        args.pop("num_classes", None)
    if store is not None and isinstance(named, str) and named in BUILTIN_DATASETS:
        train, test = store(named, args, lambda: _build(named, target, dict(args)))
    else:
        train, test = _build(named, target, args)
    override = _test_override(data)
    if override is not None:
        test = override
    name = _name(named, target)
    if len(train) == 0 or len(test) == 0:
        raise UserError(f"Dataset={name} has an empty training or test set")
    first = train.take(slice(0, 1))[0][0] if isinstance(train, TensorData) else _item(train[0])[0]
    generative = bool(data.generate)
    info: dict[str, Any] = {"train_size": len(train), "test_size": len(test)}
    k = None
    if not generative:
        k = _num_classes(train, test, num_classes)
        if k < 2:
            raise UserError(f"Dataset={name} has {k} class; classification needs at least 2 "
                            "(or pass dataset.num_classes=K)")
        info["num_classes"] = k
    if data.norm:
        shape = "x".join(str(s) for s in first.shape)
        split = (data.dataset or {}).get("split_seed", 0)
        key = f"{name}-{len(train)}-{shape}-{split}"
        info["norm"] = channel_stats(train, key, cache)
    task = TaskSpec(suite="Generate" if generative else "Classify", task=name, obs_shape=tuple(first.shape),
                    discrete=not generative, num_classes=k, info=info)
    return train, test, task


__all__ = ["BUILTIN_DATASETS", "Batches", "Digits", "ImageFolder", "TensorData", "batches", "channel_stats",
           "default_root", "iterate", "load"]
