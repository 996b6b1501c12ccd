"""dopamine's FullRainbowNetwork port (blocks/rainbow.py) and DrQ's Atari augmentation (DrQAtariAug)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from ML.blocks.network import NetworkSettings, build_network
from ML.blocks.rainbow import FullRainbowNetwork, NoisyLinear, SameConv2d, same_pads
from ML.blocks.vision import DrQAtariAug
from ML.errors import UserError

PONG = (4, 84, 84)


def params(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def test_drq_eps_network_for_pong_has_dopamines_4047015_parameters() -> None:
    net = build_network(NetworkSettings.from_config({"Eyes": "Identity", "Model": "FullRainbowNetwork", "model": {
        "num_atoms": 1, "noisy": False, "distributional": False}}), PONG, (6,))
    rainbow = net[1]
    assert isinstance(rainbow, FullRainbowNetwork)
    assert params(net) == 4_047_015
    assert rainbow.feature_dim == 64 * 11 * 11  # SAME padding: 84 → 21 → 11 → 11
    assert rainbow.hidden.in_features == 7744 and rainbow.hidden.out_features == 512  # one shared layer
    assert rainbow.advantage.out_features == 6 and rainbow.value.out_features == 1
    assert net(torch.zeros(3, *PONG, dtype=torch.uint8)).shape == (3, 6)


def test_same_padding_is_xlas_and_the_initialisers_are_flaxs() -> None:
    assert same_pads(84, 8, 4) == (2, 2) and same_pads(21, 4, 2) == (1, 2) and same_pads(11, 3, 1) == (1, 1)
    for size, kernel, stride in ((84, 8, 4), (21, 4, 2), (11, 3, 1)):  # = an explicit XLA-style pad, then VALID
        conv, x = SameConv2d(3, 5, kernel, stride), torch.randn(2, 3, size, size)
        lo, hi = same_pads(size, kernel, stride)
        want = torch.nn.functional.conv2d(torch.nn.functional.pad(x, (lo, hi, lo, hi)), conv.weight, conv.bias, stride)
        torch.testing.assert_close(conv(x), want)
    torch.manual_seed(0)
    net = FullRainbowNetwork(PONG, (6,), num_atoms=1, noisy=False, distributional=False)
    for layer in [m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]:
        fan_in = layer.weight[0].numel()
        fan_out = layer.weight.shape[0] * layer.weight[0, 0].numel()
        bound = math.sqrt(6.0 / (fan_in + fan_out))  # xavier_uniform = variance_scaling(1, fan_avg, uniform)
        assert layer.weight.abs().max() <= bound and layer.weight.abs().max() > 0.9 * bound
        assert torch.count_nonzero(layer.bias) == 0


def test_dueling_q_is_value_plus_centred_advantage() -> None:
    net = FullRainbowNetwork(PONG, (6,), num_atoms=1, noisy=False, distributional=False)
    x = torch.randint(0, 256, (2, *PONG), dtype=torch.uint8)
    h = torch.relu(net.hidden(net.torso(x.float() / 255.0)))
    adv, value = net.advantage(h), net.value(h)
    torch.testing.assert_close(net(x), value + adv - adv.mean(1, keepdim=True))


def test_c51_outputs_a_distribution_and_its_expectation() -> None:
    net = FullRainbowNetwork(PONG, (4,), num_atoms=51, noisy=False, dueling=True, distributional=True)
    assert params(net) == 4_043_424 + 512 * 4 * 51 + 4 * 51 + 512 * 51 + 51
    out = net.outputs(torch.randint(0, 256, (2, *PONG), dtype=torch.uint8))
    assert out.logits.shape == (2, 4, 51) and out.probabilities.shape == (2, 4, 51)
    torch.testing.assert_close(out.probabilities.sum(-1), torch.ones(2, 4))
    torch.testing.assert_close(out.q_values, (out.probabilities * torch.linspace(-10, 10, 51)).sum(-1))
    with pytest.raises(UserError, match="num_atoms"):
        FullRainbowNetwork(PONG, (4,), num_atoms=1, distributional=True)


def test_noisy_layers_draw_noise_per_call_in_training_and_none_in_eval() -> None:
    net = FullRainbowNetwork(PONG, (4,), num_atoms=51, noisy=True)
    noisy = net.noisy_layers()
    assert len(noisy) == 3 and isinstance(net.hidden, NoisyLinear)
    assert torch.allclose(net.hidden.weight_sigma, torch.full_like(net.hidden.weight_sigma, 0.1 / math.sqrt(7744)))
    assert net.hidden.weight_mu.abs().max() <= 1 / math.sqrt(7744)
    x = torch.randint(0, 256, (2, *PONG), dtype=torch.uint8)
    assert not torch.equal(net(x), net(x))  # fresh noise every training call
    same = net(x, fresh_noise=False)
    torch.testing.assert_close(net(x, fresh_noise=False), same)
    target = FullRainbowNetwork(PONG, (4,), num_atoms=51, noisy=True)
    target.load_state_dict(net.state_dict())
    target.share_noise(net)
    torch.testing.assert_close(target(x, fresh_noise=False), net(x, fresh_noise=False))
    net.eval()
    torch.testing.assert_close(net(x), net(x))  # dopamine's eval_mode: no noise


def test_drq_atari_aug_crops_within_dopamines_offsets_and_scales_intensity() -> None:
    torch.manual_seed(0)
    x = torch.zeros(400, 1, 12, 12)
    x[:, :, 6, 6] = 1.0  # one bright pixel: where it lands is the shift
    shifted = DrQAtariAug(pad=4, scale=0.0)(x)
    where = shifted[:, 0].flatten(1).argmax(1)
    assert {int(i) // 12 - 6 for i in where} == set(range(-3, 5))  # offsets 0..7: moves by 4 - offset
    assert {int(i) % 12 - 6 for i in where} == set(range(-3, 5))
    flat = torch.full((2000, 4, 8, 8), 100.0)
    noisy = DrQAtariAug(pad=0, scale=0.05)(flat)
    factors = noisy[:, 0, 0, 0] / 100.0
    assert torch.all(noisy == noisy[:, :1, :1, :1])  # one factor per image, over all its frames
    assert factors.min() >= 0.9 - 1e-6 and factors.max() <= 1.1 + 1e-6
    assert (factors - 0.9).abs().min() < 1e-5 and (factors - 1.1).abs().min() < 1e-5  # clipped at ±2σ
    assert DrQAtariAug()(torch.zeros(2, 4, 84, 84, dtype=torch.uint8)).dtype == torch.float32
