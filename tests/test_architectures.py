"""Built-in architectures (Identity, MLP, CNN) and shape inference as Eyes and Model."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from ML.blocks.architectures import CNN, MLP, Identity
from ML.blocks.network import NetworkSettings, build_network
from ML.errors import UserError
from ML.hyperparams import instantiate, resolve_config


def convs(module: nn.Module) -> int:
    return sum(isinstance(m, nn.Conv2d) for m in module.modules())


def test_identity_returns_its_input() -> None:
    x = torch.randn(3, 1, 8, 8)
    assert Identity((1, 8, 8))(x) is x


def test_mlp_as_model_has_a_head_and_as_body_outputs_hidden_features() -> None:
    net = build_network(NetworkSettings.from_config({"Eyes": "Identity", "Model": "MLP"}), (1, 8, 8), (10,))
    assert net(torch.zeros(5, 1, 8, 8)).shape == (5, 10)
    body = instantiate("MLP", {"hidden_dim": 32, "depth": 3}, (4, 4), None, "Eyes")
    assert body(torch.zeros(2, 4, 4)).shape == (2, 32)
    assert sum(isinstance(m, nn.Linear) for m in body.modules()) == 3
    shaped = MLP((6,), out_shape=(2, 3), depth=1)
    assert shaped(torch.zeros(4, 6)).shape == (4, 2, 3)
    assert MLP((6,), depth=0)(torch.zeros(4, 2, 3)).shape == (4, 6)


def test_mlp_arguments_reach_it_through_the_config() -> None:
    config = resolve_config(argv=["task=classify", "model.hidden_dim=17", "model.depth=1", "model.activation=GELU"])
    net = build_network(NetworkSettings.from_config(config), (1, 8, 8), (10,))
    linears = [m for m in net.modules() if isinstance(m, nn.Linear)]
    assert [m.out_features for m in linears] == [17, 10]
    assert any(isinstance(m, nn.GELU) for m in net.modules())
    with pytest.raises(UserError, match="activation"):
        MLP((4,), activation="NoSuchThing")


def test_cnn_as_eyes_outputs_a_feature_map_of_the_requested_depth() -> None:
    config = resolve_config(argv=["task=classify", "Eyes=CNN", "+eyes.depth=5"])
    net = build_network(NetworkSettings.from_config(config), (1, 28, 28), (10,))
    assert convs(net[0]) == 5
    assert net[0](torch.zeros(2, 1, 28, 28)).shape == (2, 32, 28, 28)  # same padding: size kept
    assert net(torch.zeros(2, 1, 28, 28)).shape == (2, 10)
    settings = NetworkSettings.from_config({"Eyes": "CNN", "eyes": {"depth": 6, "channels": 8}, "Model": "MLP"})
    small = build_network(settings, (1, 8, 8), (10,))
    assert small(torch.zeros(3, 1, 8, 8)).shape == (3, 10)


def test_cnn_pooling_stride_and_head() -> None:
    pooled = CNN((3, 32, 32), depth=4, channels=16, pool=1)
    assert pooled(torch.zeros(1, 3, 32, 32)).shape == (1, 16, 2, 2)  # pools stop below 4×4
    strided = CNN((4, 84, 84), depth=2, stride=2)
    assert strided(torch.zeros(1, 4, 84, 84)).shape == (1, 32, 42, 42)
    model = build_network(NetworkSettings.from_config({"Eyes": "Identity", "Model": "CNN", "model": {"depth": 2}}),
                          (3, 32, 32), (10,))
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 10)
    assert CNN((28, 28), depth=1)(torch.zeros(2, 28, 28)).shape == (2, 32, 28, 28)  # (H, W) is one channel


def test_cnn_refuses_flat_inputs_clearly() -> None:
    with pytest.raises(UserError, match=r"\(C, H, W\)"):
        CNN((64,))
    with pytest.raises(UserError, match="depth"):
        CNN((1, 8, 8), depth=-1)


def test_sequence_of_parts_with_inferred_shapes() -> None:
    net = instantiate(["CNN", "nn.Flatten", "nn.Linear"], {"depth": 2}, (1, 8, 8), (10,), "Model")
    assert convs(net) == 2
    assert net[2].in_features == 32 * 8 * 8 and net[2].out_features == 10
    assert net(torch.zeros(2, 1, 8, 8)).shape == (2, 10)


def test_user_class_with_in_features_out_features(workdir: Path) -> None:
    (workdir / "MyFile.py").write_text(
        "from torch import nn\n"
        "class Model(nn.Module):\n"
        "    def __init__(self, in_features, out_features, width=16):\n"
        "        super().__init__()\n"
        "        self.model = nn.Sequential(nn.Flatten(), nn.Linear(in_features, width),\n"
        "                                   nn.Linear(width, out_features))\n"
        "    def forward(self, x):\n"
        "        return self.model(x)\n"
        "class Eyes(nn.Module):\n"
        "    def __init__(self, in_channels, out_channels=6):\n"
        "        super().__init__()\n"
        "        self.conv = nn.Conv2d(in_channels, out_channels, 3)\n"
        "    def forward(self, x):\n"
        "        return self.conv(x)\n")
    config = resolve_config(argv=["task=classify", "Eyes=MyFile.Eyes", "Model=MyFile.Model", "model.width=9"])
    net = build_network(NetworkSettings.from_config(config), (3, 10, 10), (7,))
    assert net[0].conv.in_channels == 3
    assert net[1].model[1].in_features == 6 * 8 * 8 and net[1].model[1].out_features == 9
    assert net[1].model[2].out_features == 7
    assert net(torch.zeros(2, 3, 10, 10)).shape == (2, 7)
