"""The hyperparameter language: parsing, recipes with imports, priority, unknown keys, paths, shapes."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from ML.errors import UserError
from ML.hyperparams import instantiate, resolve, resolve_config
from ML.hyperparams.instantiate import shape_arguments
from ML.hyperparams.parse import parse_token


def test_values_parse_as_yaml_with_numbers() -> None:
    assert parse_token("lr=1e-3").value == pytest.approx(1e-3)
    assert parse_token("eyes.depth=5").path == ("eyes", "depth")
    assert parse_token("eyes.depth=5").value == 5
    assert parse_token("Eyes=[CNN,Transformer]").value == ["CNN", "Transformer"]
    assert parse_token("load=MyExp MNIST").value == "MyExp MNIST"
    assert parse_token("save=false").value is False
    assert parse_token("+new.key=x").new
    with pytest.raises(UserError, match="key=value"):
        parse_token("no-equals-sign")


def test_recipe_imports_self_and_priority(workdir: Path) -> None:
    (workdir / "base.yaml").write_text("lr: 0.5\nbatch_size: 7\neyes:\n  depth: 2\n")
    (workdir / "recipes").mkdir()
    (workdir / "recipes" / "mine.yaml").write_text(
        "imports:\n  - self\n  - base\nlr: 0.1\nseed: 3\neyes:\n  width: 4\n")
    config = resolve_config(argv=["task=mine"])
    assert config.lr == 0.5  # base comes after self, so it wins
    assert config.seed == 3 and config.batch_size == 7
    assert config.eyes == {"depth": 2, "width": 4}  # nested sections merge key by key
    config = resolve_config(("seed=4",), {"batch_size": 9, "task": "mine"}, ["seed=5"])
    assert config.seed == 5 and config.batch_size == 9  # command line > code > recipe


def test_by_task_settings_follow_the_commands_task(workdir: Path) -> None:
    (workdir / "tuned.yaml").write_text(
        "imports: [dqn]\nby_task:\n  CartPole-v1: {batch_size: 32}\n  MountainCar-v0: {agent: {gamma: 0.98}}\n")
    assert resolve_config(argv=["task=tuned"]).batch_size == 32  # the Env's default task (Classic: CartPole-v1)
    mountain = resolve_config(argv=["task=tuned", "env.task=MountainCar-v0"])
    assert mountain.batch_size == 128 and mountain.agent["gamma"] == 0.98 and mountain.agent["n_step"] == 3
    assert "by_task" not in mountain
    assert resolve_config(argv=["task=tuned", "env.task=MountainCar-v0", "agent.gamma=0.9"]).agent["gamma"] == 0.9
    # the shipped dqn recipe: Acrobot-v1 at lr 5e-4, everywhere it is reached (imports, task=RL), CartPole at 1e-3
    assert resolve_config(argv=["task=dqn"]).lr == 0.001
    for argv in (["task=dqn"], ["task=dqn_nstep1"], ["task=RL", "Env=Classic"]):
        assert resolve_config(argv=[*argv, "env.task=Acrobot-v1"]).lr == 0.0005
    from ML.hyperparams.select import task_name

    assert task_name({"Env": object()}, []) is None  # an object from code: no default task to read
    (workdir / "bad_by_task.yaml").write_text("by_task: [Acrobot-v1]\n")
    with pytest.raises(UserError, match="by_task in a recipe must map task names"):
        resolve_config(argv=["task=bad_by_task"])


def test_unknown_key_and_new_key(workdir: Path) -> None:
    with pytest.raises(UserError, match="did you mean 'train_steps'"):
        resolve_config(argv=["trian_steps=5"])
    with pytest.raises(UserError, match="replay.sav"):
        resolve_config(argv=["replay.sav=true"])
    assert resolve_config(argv=["+my.flag=1"]).my == {"flag": 1}
    assert resolve_config(argv=["eyes.anything=1"]).eyes == {"anything": 1}  # constructor args are free


def test_unknown_and_malformed_recipes(workdir: Path) -> None:
    with pytest.raises(UserError, match="unknown recipe 'nope'"):
        resolve_config(argv=["task=nope"])
    (workdir / "bad.yaml").write_text("lr: [1, 2\n")
    with pytest.raises(UserError, match="malformed YAML in recipe .*bad.yaml line"):
        resolve_config(argv=["task=bad"])
    (workdir / "a.yaml").write_text("imports: [b]\n")
    (workdir / "b.yaml").write_text("imports: [a]\n")
    with pytest.raises(UserError, match="cycle"):
        resolve_config(argv=["task=a"])


def test_resolve_paths(workdir: Path) -> None:
    (workdir / "MyFile.py").write_text(
        "from torch import nn\nmodel = nn.Linear(3, 2)\n"
        "class Net(nn.Module):\n    def __init__(self, in_features, out_features):\n"
        "        super().__init__()\n        self.f = nn.Linear(in_features, out_features)\n"
        "    def forward(self, x):\n        return self.f(x.flatten(1))\n")
    assert isinstance(resolve("MyFile.model"), nn.Linear)
    assert resolve("./MyFile.py.Net").__name__ == "Net"
    assert resolve("torch.nn.Linear") is nn.Linear
    assert resolve("nn.Linear") is nn.Linear
    assert resolve(nn.ReLU) is nn.ReLU
    for bad in ("Nope", "MyFile.missing", "./Missing.py.x", "no.such.module.Thing"):
        with pytest.raises(UserError, match="cannot resolve"):
            resolve(bad, "Eyes")


def test_shape_inference(workdir: Path) -> None:
    assert shape_arguments((3, 8, 8), (10,)) == {
        "in_shape": (3, 8, 8), "in_features": 192, "in_channels": 3, "in_dim": 8,
        "out_shape": (10,), "out_features": 10, "out_channels": 10, "out_dim": 10}
    linear = instantiate("nn.Linear", {}, (5,), (2,))
    assert (linear.in_features, linear.out_features) == (5, 2)
    given = nn.Linear(4, 4)
    assert instantiate(given, {}, (5,), (2,)) is given  # an instance is used as given
    with pytest.raises(UserError, match="does not take argument 'deph'"):
        instantiate("nn.Linear", {"deph": 3}, (5,), (2,))


def test_sequence_shapes_and_argument_routing() -> None:
    model = instantiate(["nn.Flatten", "nn.Linear"], {"bias": False}, (2, 3), (4,))
    assert model(torch.zeros(7, 2, 3)).shape == (7, 4)
    assert model[1].bias is None and model[1].in_features == 6
    indexed = instantiate(["nn.Linear", "nn.Linear"], {0: {"out_features": 5}, 1: {"bias": False}},
                          (3,), (2,))
    assert indexed[0].bias is not None and indexed[1].bias is None and indexed[1].in_features == 5
    with pytest.raises(UserError, match="ambiguous"):
        instantiate(["nn.Linear", "nn.Linear"], {"bias": False, 0: {"out_features": 5}}, (3,), (2,))
