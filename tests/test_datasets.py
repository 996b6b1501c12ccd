"""Datasets as environments: Digits, MNIST/FashionMNIST/CIFAR10 from files in their real on-disk formats,
torchvision classes and user Dataset classes, batches and the errors users see."""

from __future__ import annotations

import gzip
import hashlib
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision

from ML.envs import datasets
from ML.envs.datasets import DatasetSettings
from ML.errors import UserError


def load(Dataset, **dataset):  # noqa: N803 - the config key
    return datasets.load(DatasetSettings.from_config({"Dataset": Dataset, "dataset": dataset}))


# ----------------------------------------------------------------- writers of the real formats


def write_idx(path: Path, array: np.ndarray, packed: bool = False) -> None:
    """An idx file as LeCun's MNIST distribution has it: magic (0x08 = ubyte, ndim), big-endian sizes, data."""
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    data = header + array.astype(np.uint8).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    if packed:
        with gzip.open(str(path) + ".gz", "wb") as f:
            f.write(data)
    else:
        path.write_bytes(data)


def write_mnist(root: Path, name: str = "MNIST", n_train: int = 60, n_test: int = 20, seed: int = 0,
                packed_train: bool = True) -> dict[str, np.ndarray]:
    """``<root>/<name>/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte`` (train ones gzipped)."""
    rng = np.random.RandomState(seed)
    arrays = {}
    for split, n, packed in (("train", n_train, packed_train), ("t10k", n_test, False)):
        labels = np.arange(n) % 10
        images = (rng.rand(n, 28, 28) * 255).astype(np.uint8)
        images[:, 0, :] = (labels * 20)[:, None]  # a learnable cue in the first row
        write_idx(root / name / "raw" / f"{split}-images-idx3-ubyte", images, packed)
        write_idx(root / name / "raw" / f"{split}-labels-idx1-ubyte", labels, packed)
        arrays[split] = images
        arrays[split + "_labels"] = labels
    return arrays


def write_cifar10(root: Path, per_batch: int = 10, seed: int = 0) -> dict[str, np.ndarray]:
    """``<root>/cifar-10-batches-py``: pickled dicts with ``data`` (N × 3072 uint8, channel planes) and
    ``labels``, plus ``batches.meta`` with ``label_names``: the layout of cifar-10-python.tar.gz."""
    rng = np.random.RandomState(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    written = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = (rng.rand(per_batch, 3 * 32 * 32) * 255).astype(np.uint8)
        labels = [int(v) for v in rng.randint(0, 10, per_batch)]
        with open(folder / name, "wb") as f:
            pickle.dump({"batch_label": name.encode(), "labels": labels, "data": data, "filenames": []}, f)
        written[name] = data
        written[name + "_labels"] = np.array(labels)
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": names, "num_cases_per_batch": per_batch, "num_vis": 3072}, f)
    return written


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def trust_written_cifar(monkeypatch: pytest.MonkeyPatch, root: Path) -> None:
    """torchvision verifies every CIFAR-10 file against the original's md5; the engine keeps that check,
    so the test registers its own files' sums (as if they were the originals) instead of relaxing it."""
    cls = torchvision.datasets.CIFAR10
    folder = root / cls.base_folder
    monkeypatch.setattr(cls, "train_list", [[n, md5(folder / n)] for n, _ in cls.train_list])
    monkeypatch.setattr(cls, "test_list", [[n, md5(folder / n)] for n, _ in cls.test_list])
    monkeypatch.setattr(cls, "meta", {**cls.meta, "md5": md5(folder / cls.meta["filename"])})


# ----------------------------------------------------------------- Digits


def test_digits_split_is_fixed_stratified_and_disjoint() -> None:
    train, test, spec = load("Digits")
    again, again_test, _ = datasets.load(DatasetSettings.from_config({"Dataset": "Digits", "dataset": {}}))
    assert torch.equal(train.index, again.index) and torch.equal(test.x, again_test.x)
    assert set(train.index.tolist()).isdisjoint(test.index.tolist())
    assert len(train) + len(test) == 1797 and len(test) == 359
    assert torch.bincount(test.y, minlength=10).min() >= 35  # every class in the test set, ~20% each
    assert spec.suite == "Classify" and spec.task == "Digits" and spec.obs_shape == (1, 8, 8)
    assert spec.num_classes == 10 and spec.info == {"num_classes": 10, "train_size": 1438, "test_size": 359}
    x, y = test.take(slice(0, 5))
    assert x.dtype == torch.float32 and y.dtype == torch.int64 and 0 <= float(x.min()) and float(x.max()) <= 1
    from sklearn.datasets import load_digits

    digits = load_digits()
    assert np.allclose(test.x[:, 0].numpy(), digits.images[test.index.numpy()] / 16)
    assert np.array_equal(test.y.numpy(), digits.target[test.index.numpy()])
    other, _, _ = load("Digits", split_seed=1)
    assert not torch.equal(other.index, train.index)


def test_batches_are_seeded_shuffled_and_count_epochs() -> None:
    train, _, _ = load("Digits")
    stream = datasets.batches(train, 100, torch.Generator().manual_seed(3))
    first = [next(stream) for _ in range(15)]
    assert stream.epoch == 1 and stream.samples == 1500  # 14 full batches per epoch (the rest is dropped)
    replay = datasets.batches(train, 100, torch.Generator().manual_seed(3))
    assert all(torch.equal(a[1], next(replay)[1]) for a in first)
    other = datasets.batches(train, 100, torch.Generator().manual_seed(4))
    assert not torch.equal(first[0][1], next(other)[1])
    x, y = first[0]
    assert x.shape == (100, 1, 8, 8) and x.dtype == torch.float32 and y.dtype == torch.int64
    epoch = torch.cat([b[1] for b in first[:14]])
    assert len(epoch) == 1400 and len(set(first[0][0].sum(dim=(1, 2, 3)).tolist())) > 50
    tiny = datasets.batches(datasets.TensorData(torch.zeros(3, 2), torch.arange(3)), 8)
    assert len(next(tiny)[1]) == 3 and tiny.epoch == 1


def test_unknown_dataset_lists_the_builtins() -> None:
    with pytest.raises(UserError, match="Digits, MNIST, FashionMNIST, CIFAR10"):
        load("Nope")
    with pytest.raises(UserError, match="no Dataset"):
        datasets.load(DatasetSettings.from_config({"Dataset": None}))


# ----------------------------------------------------------------- torchvision datasets from real files


def test_mnist_from_idx_files(tmp_path: Path) -> None:
    written = write_mnist(tmp_path, n_train=60, n_test=20)
    train, test, spec = load("MNIST", root=str(tmp_path))
    assert spec.task == "MNIST" and spec.obs_shape == (1, 28, 28) and spec.num_classes == 10
    assert spec.info["train_size"] == 60 and spec.info["test_size"] == 20
    x, y = test.take(slice(0, 20))
    assert np.allclose(x[:, 0].numpy() * 255, written["t10k"], atol=1e-3)
    assert np.array_equal(y.numpy(), written["t10k_labels"])
    assert (tmp_path / "MNIST/raw/train-images-idx3-ubyte").is_file()  # the .gz was unpacked in place
    batch = next(datasets.batches(train, 16, torch.Generator().manual_seed(0)))
    assert batch[0].shape == (16, 1, 28, 28) and float(batch[0].max()) <= 1.0


def test_fashion_mnist_as_a_torchvision_class_passed_in_code(tmp_path: Path) -> None:
    write_mnist(tmp_path, "FashionMNIST", n_train=30, n_test=10, packed_train=False)
    train, test, spec = load(torchvision.datasets.FashionMNIST, root=str(tmp_path))
    assert spec.task == "FashionMNIST" and len(train) == 30 and len(test) == 10 and spec.num_classes == 10
    _, _, named = load("FashionMNIST", root=str(tmp_path))
    assert named.obs_shape == (1, 28, 28)


def test_mnist_files_missing_is_one_clear_line(tmp_path: Path) -> None:
    with pytest.raises(UserError) as info:
        load("MNIST", root=str(tmp_path))
    message = str(info.value)
    assert "\n" not in message and str(tmp_path / "MNIST" / "raw") in message
    assert "train-images-idx3-ubyte(.gz)" in message and "dataset.download=true" in message


def test_cifar10_from_python_batches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    written = write_cifar10(tmp_path, per_batch=10)
    with pytest.raises(UserError, match="corrupted"):  # not the original files: the md5 check refuses them
        load("CIFAR10", root=str(tmp_path))
    trust_written_cifar(monkeypatch, tmp_path)
    train, test, spec = load("CIFAR10", root=str(tmp_path))
    assert spec.task == "CIFAR10" and spec.obs_shape == (3, 32, 32) and spec.num_classes == 10
    assert len(train) == 50 and len(test) == 10
    x, y = test.take(slice(0, 10))
    assert np.allclose(x.numpy().reshape(10, -1) * 255, written["test_batch"], atol=1e-3)  # channel planes
    assert np.array_equal(y.numpy(), written["test_batch_labels"])


def test_cifar10_missing_files(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"CIFAR10 files not found under .*cifar-10-batches-py.*data_batch_1"):
        load("CIFAR10", root=str(tmp_path))


# ----------------------------------------------------------------- user datasets


USER_DATASETS = '''
import numpy as np
import torch
from torch.utils.data import Dataset


class MyDataset(Dataset):
    """No train/test notion: the engine splits off a fixed test fraction."""

    def __init__(self, n=50, classes=3):
        rng = np.random.RandomState(0)
        self.x = rng.rand(n, 2, 4).astype(np.float32)
        self.y = np.arange(n) % classes

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        return self.x[i], int(self.y[i])


class WithSplits(Dataset):
    def __init__(self, train=True):
        self.n = 40 if train else 12
        self.train = train

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return torch.full((5,), float(i)), torch.tensor(i % 4)
'''


def test_user_dataset_class_by_path(workdir: Path) -> None:
    (workdir / "MyFile.py").write_text(USER_DATASETS)
    train, test, spec = load("MyFile.MyDataset", n=40, classes=4)
    assert spec.task == "MyDataset" and spec.obs_shape == (2, 4) and spec.num_classes == 4
    assert len(train) == 32 and len(test) == 8
    again, again_test, _ = load("MyFile.MyDataset", n=40, classes=4)
    assert again.indices == train.indices and set(train.indices).isdisjoint(test.indices)
    stream = datasets.batches(train, 10, torch.Generator().manual_seed(0))
    x, y = next(stream)
    assert x.shape == (10, 2, 4) and x.dtype == torch.float32 and y.dtype == torch.int64
    for _ in range(3):
        next(stream)
    assert stream.epoch == 1
    seen = torch.cat([y for _, y in datasets.iterate(test, 3)])
    assert len(seen) == 8
    _, quarter, _ = load("MyFile.MyDataset", n=40, test_fraction=0.25)
    assert len(quarter) == 10
    with pytest.raises(UserError, match="does not take argument 'depth'"):
        load("MyFile.MyDataset", depth=3)


def test_user_dataset_with_train_flag_and_instances(workdir: Path) -> None:
    (workdir / "MyFile.py").write_text(USER_DATASETS)
    train, test, spec = load("MyFile.WithSplits")
    assert train.train is True and test.train is False and (len(train), len(test)) == (40, 12)
    assert spec.obs_shape == (5,) and spec.num_classes == 4
    instance = datasets.TensorData(torch.rand(30, 3), torch.arange(30) % 3)
    tr, te, sp = datasets.load(DatasetSettings.from_config({"Dataset": instance, "dataset": {"num_classes": 5}}))
    assert isinstance(tr, datasets.TensorData) and (len(tr), len(te)) == (24, 6) and sp.num_classes == 5
    assert sp.task == "TensorData"
