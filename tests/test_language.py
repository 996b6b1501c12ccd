"""UnifiedML's language: direct code (safely parsed), sequentials, parts, data, the 5 ways."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import ML
from ML.agents.classifier import ClassifierAgent
from ML.checkpoints import agent_settings
from ML.envs import datasets
from ML.envs.datasets import DatasetSettings
from ML.errors import UserError
from ML.hyperparams import instantiate, resolve, resolve_config
from ML.hyperparams.code import evaluate
from tests.conftest import run_ml
from tests.test_datasets import trust_written_cifar, write_cifar10

TINY = ["train_steps=2", "evaluate_per_steps=0", "threads=1", "progress=false"]


# ------------------------------------------------------------------ direct code


def test_safe_parser_builds_nn_and_torch_expressions() -> None:
    linear = evaluate("nn.Linear(3 * 32 * 32, 10, bias=False)")
    assert isinstance(linear, nn.Linear) and linear.in_features == 3072 and linear.bias is None
    seq = resolve("nn.Sequential(nn.Flatten(), nn.Linear(64, 10))")
    assert seq(torch.zeros(2, 1, 8, 8)).shape == (2, 10)
    assert evaluate("torch.float32") is torch.float32 and evaluate("-2 ** 3") == -8
    cnn = evaluate("CNN(in_shape=[1, 8, 8], depth=2)")
    assert len(cnn.body) == 4


@pytest.mark.parametrize("text, reason", [
    ("__import__('os').system('true')", "refused"),
    ("__import__('os')", "private or dunder"),
    ("nn.Linear.__init__", "private or dunder"),
    ("torch.nn.Module.__subclasses__()", "private or dunder"),
    ("open('/etc/passwd')", "is not nn"),
    ("eval('1')", "is not nn"),
    ("os.system('true')", "refused"),
    ("os.getcwd()", "is not nn"),
    ("torch.load('x.pt')", "not a constructor"),
    ("torch.hub.load('a', 'b')", "not a constructor"),
    ("torch.set_default_dtype(torch.float64)", "not a constructor"),
    ("nn.Linear(4, 2).apply(print)", "Call is not a name"),
    ("nn.init.zeros_", "not an nn module class"),
    ("F.relu(1)", "not a constructor"),
    ("(lambda: 1)()", "named objects"),
    ("lambda: 1", "Lambda"),
    ("nn.Linear(*[1, 2])", "unpacking"),
    ("[x for x in nn.Linear(1, 2).parameters()]", "ListComp"),
    ("nn.ModuleList()[0]", "Subscript"),
    ("f'{nn}'", "JoinedStr"),
    ("import os", "cannot parse"),
    ("10 ** 10 ** 10", "exponent"),
])
def test_safe_parser_refuses(text: str, reason: str) -> None:
    with pytest.raises(UserError, match=reason):
        evaluate(text)


def test_sequentials_with_indexed_and_inferred_arguments() -> None:
    config = resolve_config(argv=["task=classify", "Eyes=[CNN,Transformer]", "+eyes.1.depth=5"])
    agent = ClassifierAgent(datasets.load(DatasetSettings.from_config(config))[2], agent_settings(config))
    eyes = agent.net[0]
    assert len(eyes[1].encoder.layers) == 5 and agent(torch.zeros(2, 1, 8, 8)).shape == (2, 10)
    config = resolve_config(argv=["task=classify", "Model=[CNN,nn.Flatten(),nn.Linear]", "+model.depth=5"])
    model = ClassifierAgent(datasets.load(DatasetSettings.from_config(config))[2], agent_settings(config)).net[-1]
    assert sum(isinstance(m, nn.Conv2d) for m in model[0].modules()) == 5 and model[2].out_features == 10
    # a call with commas inside a list survives YAML's split
    seq = instantiate(resolve_config(argv=["Eyes=[CNN,nn.Flatten(),nn.Linear(2048, 7)]"]).Eyes, {"depth": 2},
                      (1, 8, 8), None, "Eyes")
    assert seq(torch.zeros(1, 1, 8, 8)).shape == (1, 7)
    with pytest.raises(UserError, match="ambiguous"):
        instantiate(["CNN", "CNN"], {"depth": 2}, (1, 8, 8), None, "Eyes")


def test_short_names_module_paths_and_the_source_documents_paths() -> None:
    from ML.blocks.gan import Discriminator, Generator
    from ML.blocks.resnet import ResNet18

    for spec in ("ResNet18", "ML.blocks.resnet.ResNet18", "ML.Blocks.Architectures.Vision.ResNet18.ResNet18"):
        assert resolve(spec) is ResNet18
    assert resolve("DCGAN.Generator") is Generator and resolve("Discriminator") is Discriminator
    assert resolve("OneCycleLR") is torch.optim.lr_scheduler.OneCycleLR


# ------------------------------------------------------------------ parts


def test_aug_pool_trunk_scheduler_and_norm(workdir: Path) -> None:
    config = resolve_config(argv=["task=classify", "Eyes=CNN", "eyes.depth=1", "Pool=nn.AdaptiveAvgPool2d(2)",
                                  "Trunk=MLP", "trunk.hidden_dim=16", "Aug=RandomCropFlip", "aug.padding=1",
                                  "norm=true", "Scheduler=CosineAnnealingLR", "Optim=SGD", "lr=0.1",
                                  "optim.momentum=0.9", "train_steps=10"])
    train, test, spec = datasets.load(DatasetSettings.from_config(config))
    cached = list((workdir / "results/.cache").glob("norm-Digits-*.json"))
    assert len(cached) == 1 and spec.info["norm"] == json.loads(cached[0].read_text())
    assert 0.25 < spec.info["norm"]["mean"][0] < 0.35
    agent = ClassifierAgent(spec, agent_settings(config))
    names = [type(m).__name__ for m in agent.net]
    assert names[0] == "Normalize" and [type(m).__name__ for m in agent.net[1]] == ["CNN", "AdaptiveAvgPool2d", "MLP"]
    assert type(agent.aug).__name__ == "RandomCropFlip" and agent.aug.padding == 1
    assert agent.scheduler.T_max == 10 and type(agent.optim).__name__ == "SGD"
    batch = train.take(slice(0, 8))
    for step in range(5):
        agent.update(batch, step)
    assert agent.optim.param_groups[0]["lr"] == pytest.approx(0.1 * (1 + np.cos(np.pi * 5 / 10)) / 2)
    x = test.take(slice(0, 4))[0]
    assert np.array_equal(agent.act(x), agent.act(x))  # inference: eval mode, no augmentation


def test_cifar_recipe_on_local_cifar_files(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_cifar10(workdir / "datasets", per_batch=4)
    trust_written_cifar(monkeypatch, workdir / "datasets")
    config = resolve_config(argv=["task=cifar_recipe", "eyes.width=4", "batch_size=4", "train_steps=2"])
    assert (config.Eyes, config.Aug, config.Scheduler, config.norm, config.Optim) == \
        ("ResNet18", "RandomCropFlip", "OneCycleLR", True, "SGD")
    agent = ML.launch(task="cifar_recipe", progress=False, threads=1, evaluate_per_steps=0,
                      **{"eyes.width": 4, "batch_size": 4, "train_steps": 2})
    assert agent.scheduler.total_steps == 2 and agent(torch.zeros(1, 3, 32, 32)).shape == (1, 10)
    run = json.loads((workdir / "results/Exp/runs/cifar_recipe/Classify/CIFAR10/0/run.json").read_text())
    assert run["status"] == "complete" and len(run["env"]["norm"]["mean"]) == 3


# ------------------------------------------------------------------ data


def _write_images(root: Path, classes: dict[str, int], size: int = 10) -> None:
    from PIL import Image

    rng = np.random.RandomState(0)
    for name, count in classes.items():
        folder = root / name if name else root
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(count):
            Image.fromarray((rng.rand(size, size + 2, 3) * 255).astype(np.uint8)).save(folder / f"{i}.png")


def test_image_folder_and_test_dataset(workdir: Path) -> None:
    _write_images(workdir / "imgs", {"cat": 5, "dog": 5})
    config = resolve_config(argv=["task=classify", "Dataset=ImageFolder", "dataset.root=imgs", "dataset.size=8"])
    train, test, spec = datasets.load(DatasetSettings.from_config(config))
    assert spec.obs_shape == (3, 8, 8) and spec.num_classes == 2 and (len(train), len(test)) == (8, 2)
    (workdir / "MyFile.py").write_text(
        "import torch\nfrom torch.utils.data import Dataset\n"
        "class Test(Dataset):\n    def __len__(self): return 3\n"
        "    def __getitem__(self, i): return torch.zeros(3, 8, 8), i % 2\n")
    config = resolve_config(argv=["task=classify", "Dataset=ImageFolder", "dataset.root=imgs", "dataset.size=8",
                                  "TestDataset=MyFile.Test"])
    assert len(datasets.load(DatasetSettings.from_config(config))[1]) == 3
    _write_images(workdir / "faces", {"": 4})  # a flat folder: one class, fine for generative tasks
    config = resolve_config(argv=["task=dcgan", "Dataset=ImageFolder", "dataset.root=faces"])
    assert datasets.load(DatasetSettings.from_config(config))[2].suite == "Generate"
    with pytest.raises(UserError, match="is not a folder"):
        datasets.load(DatasetSettings.from_config(resolve_config(argv=["Dataset=ImageFolder", "dataset.root=nowhere"])))


# ------------------------------------------------------------------ the 5 ways


RUN_PY = {
    2: "import ML\nML.launch()\n",
    3: "import ML\nML.launch('eyes.depth=5', task='classify', Dataset='Digits', Eyes='CNN')\n",
    5: "import ML\nfrom ML.envs.datasets import Digits\nML.launch(Dataset=Digits)\n",
}
RECIPE_4 = "imports:\n  - classify\n  - self\nDataset: Digits\nEyes: CNN\neyes:\n  depth: 5\n"
RECIPE_5 = "imports:\n  - classify\n  - self\nEyes: CNN\neyes:\n  depth: 5\n"


def _config_of(run: Path) -> dict:
    config = json.loads((run / "run.json").read_text())["config"]
    assert json.loads((run / "run.json").read_text())["status"] == "complete"
    for key in ("task", "run_dir"):
        config.pop(key)
    config["Dataset"] = resolve(config["Dataset"])
    return config


def test_the_five_ways_give_one_config(workdir: Path) -> None:
    ways = {}
    for way in (1, 2, 3, 4, 5):
        folder = workdir / f"way{way}"
        folder.mkdir()
        args = [*TINY, f"run_dir={folder / 'run'}"]
        if way == 1:
            run_ml("task=classify", "Dataset=Digits", "Eyes=CNN", "+eyes.depth=5", *args, cwd=folder)
        elif way == 4:
            (folder / "recipe.yaml").write_text(RECIPE_4)
            run_ml("task=recipe", *args, cwd=folder)
        else:
            (folder / "Run.py").write_text(RUN_PY[way])
            extra = {2: ["task=classify", "Dataset=Digits", "Eyes=CNN", "eyes.depth=5"], 3: [],
                     5: ["task=recipe"]}[way]
            if way == 5:
                (folder / "recipe.yaml").write_text(RECIPE_5)
            proc = subprocess.run([sys.executable, "Run.py", *extra, *args], cwd=folder, capture_output=True,
                                  text=True, timeout=300)
            assert proc.returncode == 0, proc.stderr
        ways[way] = _config_of(folder / "run")
    assert ways[1]["eyes"] == {"depth": 5} and ways[1]["Eyes"] == "CNN"
    for way in (2, 3, 4, 5):
        assert ways[way] == ways[1], way
    # in-process, the same through resolve_config (ways 1, 3 and 4)
    (workdir / "recipe.yaml").write_text(RECIPE_4)
    one = resolve_config(argv=["task=classify", "Dataset=Digits", "Eyes=CNN", "+eyes.depth=5"])
    three = resolve_config(("eyes.depth=5",), {"task": "classify", "Dataset": "Digits", "Eyes": "CNN"})
    four = resolve_config(argv=["task=recipe"])
    assert one == three and {**four, "task": "classify"} == one


# ------------------------------------------------------------------ tracking


def test_wandb_without_the_package_is_one_line(workdir: Path) -> None:
    proc = run_ml("task=classify", "wandb=true", *TINY, cwd=workdir, check=False)
    assert proc.returncode == 2 and "wandb=true needs the wandb package: pip install wandb" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


# ------------------------------------------------------------------ a class's own arguments


def test_a_torchvision_dataset_gets_its_own_arguments(workdir: Path) -> None:
    """FakeData's own ``size`` and ``num_classes`` reach it verbatim (no root is pushed into its first
    argument), and with no train/test notion it is split by the engine's ``test_fraction``."""
    ML.launch(task="classify", Dataset="torchvision.datasets.FakeData", progress=False, threads=1,
              evaluate_per_steps=0, train_steps=3, **{"dataset.size": 40, "dataset.image_size": [1, 16, 16],
                                                      "dataset.num_classes": 3})
    info = json.loads((workdir / "results/Exp/runs/classify/Classify/FakeData/0/run.json").read_text())
    assert info["env"]["num_classes"] == 3
    assert (info["env"]["train_size"], info["env"]["test_size"]) == (32, 8)


def test_a_user_env_gets_only_the_engine_values_it_declares(workdir: Path) -> None:
    (workdir / "MyEnv.py").write_text(
        "from ML.envs.classic import Classic\n\n\n"
        "class Env(Classic):\n"
        "    seen = []\n\n"
        "    def __init__(self, seed=0, size=3):  # no 'evaluation', its own 'size'\n"
        "        Env.seen.append((seed, size))\n"
        "        super().__init__(task='CartPole-v1', seed=seed)\n")
    ML.launch(task="dqn", Env="MyEnv.Env", progress=False, train_steps=0, evaluate_episodes=1, seed=4,
              **{"env.size": 5})
    import MyEnv

    assert MyEnv.Env.seen == [(4, 5), (4, 5)]  # training and evaluation envs: the run's seed, the user's size
