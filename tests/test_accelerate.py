"""accelerate=true: the memory-mapped store, shared-RAM batch workers, mixed precision, 2-process DDP (gloo)."""

from __future__ import annotations

import json
import multiprocessing
import os
from pathlib import Path

import numpy as np
import pytest
import torch

import ML
from ML import distributed
from ML.accelerate import Accelerator, AccelSettings, choose, cpu_has_native_bf16
from ML.blocks.network import pick_device
from ML.envs import datasets, memmap
from ML.envs.datasets import DatasetSettings
from ML.hyperparams import resolve_config
from ML.replay import Replay


def _load(*argv: str):
    config = resolve_config(argv=["task=classify", *argv])
    store = memmap.store_for(AccelSettings.from_config(config), config.results)
    return datasets.load(DatasetSettings.from_config(config), store)


def test_store_round_trips_exactly_and_is_built_once(workdir: Path) -> None:
    plain_train, plain_test, _ = _load()
    train, test, spec = _load("accelerate=true")
    assert isinstance(train, memmap.MemmapData) and isinstance(test, memmap.MemmapData)
    for a, b in ((plain_train, train), (plain_test, test)):
        assert torch.equal(a.take(slice(None))[0], b.take(slice(None))[0])
        assert torch.equal(a.y, b.y)
        index = torch.tensor([5, 0, 17, 5])
        assert torch.equal(a.take(index)[0], b.take(index)[0])
    folder = train.folder
    assert folder.parent == workdir / "results/.cache/datasets" and folder.name.startswith("Digits-")
    assert np.load(folder / "train_x.npy", mmap_mode="r").dtype == np.uint8  # k/16 stored as k
    stamp = (folder / "train_x.npy").stat().st_mtime_ns
    again, _, _ = _load("accelerate=true", "seed=3")  # another seed: the same store, not rebuilt
    assert again.folder == folder and (folder / "train_x.npy").stat().st_mtime_ns == stamp
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".")]  # no temporary left over
    assert spec.obs_shape == (1, 8, 8) and spec.num_classes == 10


def test_store_formats(tmp_path: Path) -> None:
    x = torch.randint(0, 256, (20, 3, 4, 4), dtype=torch.uint8)
    y = torch.arange(20) % 3
    odd = torch.rand(6, 5)  # not k/255 or k/16: kept as float32
    folder = memmap.write_store(tmp_path / "store", datasets.TensorData(x, y, 1 / 255, ["a", "b", "c"]),
                                datasets.TensorData(odd, torch.zeros(6)))
    train, test = memmap.MemmapData(folder, "train"), memmap.MemmapData(folder, "test")
    assert torch.equal(train.take(slice(None))[0], x.float() * (1 / 255)) and train.classes == ["a", "b", "c"]
    assert torch.equal(test.take(slice(None))[0], odd) and test.xm.dtype == np.float32
    import pickle

    assert pickle.loads(pickle.dumps(train)).folder == folder  # pickled as its location
    memmap.write_store(tmp_path / "store", datasets.TensorData(x, y), datasets.TensorData(x, y))  # exists: kept
    assert memmap.MemmapData(folder, "test").xm.dtype == np.float32


def test_shared_workers_serve_the_plain_batches(workdir: Path) -> None:
    train, _, _ = _load("accelerate=true")
    plain = datasets.batches(datasets.TensorData(train.x, train.y, train.scale), 500,
                             torch.Generator().manual_seed(1))
    shared = memmap.SharedBatches(train, 500, torch.Generator().manual_seed(1), workers=2)
    halves = [memmap.SharedBatches(train, 250, torch.Generator().manual_seed(1), workers=w, shard=(r, 2))
              for r, w in ((0, 1), (1, 0))]
    try:
        for _ in range(7):  # 2 batches per epoch of 1438: crosses epochs
            x, y = next(plain)
            xs, ys = next(shared)
            assert torch.equal(x, xs) and torch.equal(y, ys)
            parts = [next(h) for h in halves]
            assert torch.equal(torch.cat([p[0] for p in parts]), x)
        assert shared.epoch == plain.epoch == halves[0].epoch == 3
        assert all(p.is_alive() for p in shared._procs)
    finally:
        shared.close()
        halves[0].close()
    assert not shared._procs


def test_shared_memory_is_seen_by_forked_workers() -> None:
    array = memmap.shared_zeros((4, 3), np.float32)

    if "fork" not in multiprocessing.get_all_start_methods():
        pytest.skip("needs fork")

    def seen_by_parent(array: np.ndarray) -> bool:
        def fill() -> None:
            array[:] = 7

        proc = multiprocessing.get_context("fork").Process(target=fill)
        proc.start()
        proc.join()
        return bool((array == 7).all())

    assert seen_by_parent(array)
    replay = Replay(None, 5000, (3,), np.float32, (), np.int64, shared=True)
    replay._grow()  # grown arrays stay shared
    assert replay._obs.shape[0] == 2048 and seen_by_parent(replay._obs) and seen_by_parent(replay._slots)
    assert not seen_by_parent(Replay(None, 10, (3,), np.float32, (), np.int64)._obs)


def test_decisions() -> None:
    cpu = torch.device("cpu")
    assert choose(cpu, conv=False)["amp"] is None
    off = choose(cpu, conv=True, enabled=False)  # accelerate=false: nothing changes the plain update
    assert off["enabled"] is False and off["why"] == "accelerate=false"
    assert off["amp"] is None and not (off["grad_scaler"] or off["channels_last"] or off["pinned"] or off["compile"])
    conv = choose(cpu, conv=True)  # bf16 for a conv network only where the CPU computes it natively
    assert conv["amp"] == ("bfloat16" if cpu_has_native_bf16() else None)
    assert conv["channels_last"] is cpu_has_native_bf16() and not conv["pinned"]
    off, on = AccelSettings.from_config({}), AccelSettings.from_config({"accelerate": True})
    assert Accelerator(off, cpu, net := torch.nn.Linear(2, 2)).describe() == {}  # run.json records nothing
    assert Accelerator(on, cpu, net).describe()["accelerate"]["enabled"] is True
    cuda = choose(torch.device("cuda"), conv=True) if torch.cuda.is_available() else None
    if cuda:
        assert cuda["pinned"] and cuda["channels_last"] and cuda["amp"] in ("bfloat16", "float16")
    assert pick_device("auto").type in ("cuda", "mps", "cpu") and pick_device(None).type == "cpu"
    # a conv network under CPU bf16 autocast (where the CPU has it) still trains
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.Flatten(), torch.nn.Linear(144, 3))
    accel = Accelerator(on, cpu, net)
    optim = torch.optim.SGD(net.parameters(), lr=0.1)
    x, y = torch.rand(8, 1, 8, 8), torch.arange(8) % 3
    before = net[0].weight.detach().clone()
    with accel.autocast():
        loss = torch.nn.functional.cross_entropy(net(accel.to_device(x)).float(), y)
    accel.step(loss, optim)
    assert not torch.equal(before, net[0].weight) and net[0].weight.dtype == torch.float32


def _final(run: Path) -> tuple[float, dict]:
    info = json.loads((run / "run.json").read_text())
    return float(info["final_score"]), info


def test_accelerated_and_plain_runs_reach_the_same_accuracy(workdir: Path) -> None:
    threads = torch.get_num_threads()
    common = dict(task="classify", progress=False, threads=1, train_steps=400, evaluate_per_steps=400)
    try:
        ML.launch(**common, experiment="plain")
        ML.launch(**common, experiment="fast", accelerate=True, workers=1)
    finally:
        torch.set_num_threads(threads)
    plain, _ = _final(workdir / "results/plain/runs/classify/Classify/Digits/0")
    fast, info = _final(workdir / "results/fast/runs/classify/Classify/Digits/0")
    assert plain >= 0.9 and abs(plain - fast) <= 0.02
    assert info["config"]["accelerate"] is True and info["env"]["accelerate"]["enabled"] is True
    assert info["status"] == "complete"


def test_two_process_gloo_run_trains_and_ranks_agree(workdir: Path) -> None:
    threads = torch.get_num_threads()
    try:
        agent = ML.launch(task="classify", progress=False, threads=1, world_size=2, train_steps=150,
                          evaluate_per_steps=150, log_per_steps=50)
    finally:
        torch.set_num_threads(threads)
    assert distributed.last_run["world_size"] == 2 and distributed.last_run["backend"] == "gloo"
    assert distributed.last_run["max_param_diff"] == 0.0
    run = workdir / "results/Exp/runs/classify/Classify/Digits/0"
    score, info = _final(run)
    assert score >= 0.9 and info["config"]["world_size"] == 2
    assert sorted(os.listdir(run)) == ["agent.pt", "eval.csv", "run.json", "train.csv"]
    rows = (run / "train.csv").read_text().splitlines()
    assert rows[-1].split(",")[1] == str(150 * 64 * 2)  # frame: samples of both ranks
    test_set = datasets.load(DatasetSettings.from_config(resolve_config(argv=["task=classify"])))[1]
    assert agent.evaluate(test_set)["accuracy"] == score


def test_compile_true_trains_through_torch_compile(workdir: Path) -> None:
    """compile=true runs the network through torch.compile (inductor on a CPU: ~15 s to compile)."""
    agent = ML.launch(task="classify", train_steps=40, evaluate_per_steps=40, accelerate=True, compile=True,
                      threads=1, progress=False)
    assert type(agent.train_net.value).__name__ == "OptimizedModule"  # what the updates ran
    run = workdir / "results/Exp/runs/classify/Classify/Digits/0"
    info = json.loads((run / "run.json").read_text())
    assert info["env"]["accelerate"]["compile"] is True and info["final_score"] > 0.8
