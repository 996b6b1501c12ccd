"""UnifiedML's architectures: ResNet18, Transformer/ViT, DCGAN's pair, CIFAR augmentation."""

from __future__ import annotations

import pytest
import torch

from ML.blocks.gan import Discriminator, Generator
from ML.blocks.resnet import Normalize, RandomCropFlip, ResNet18
from ML.blocks.transformer import Transformer, ViT
from ML.errors import UserError
from ML.hyperparams import instantiate, resolve


def test_resnet18_cifar_stem_body_and_head() -> None:
    body = ResNet18((3, 32, 32), width=8)
    assert body(torch.zeros(2, 3, 32, 32)).shape == (2, 64)
    assert isinstance(body.body[0], torch.nn.Conv2d) and body.body[0].kernel_size == (3, 3)
    assert not any(isinstance(m, torch.nn.MaxPool2d) for m in body.modules())  # CIFAR-style: no max-pool
    head = instantiate("ResNet18", {"width": 8}, (1, 8, 8), (10,), "Model")
    assert head(torch.zeros(2, 1, 8, 8)).shape == (2, 10)
    full = ResNet18((3, 32, 32), (10,))
    assert 11.1e6 < sum(p.numel() for p in full.parameters()) < 11.2e6  # the known ResNet-18 size


def test_transformer_tokens_from_images_sequences_and_vectors() -> None:
    vit = instantiate("ViT", {"dim": 32, "heads": 2}, (3, 32, 32), (10,), "Eyes")
    assert vit(torch.zeros(2, 3, 32, 32)).shape == (2, 10) and vit.position.shape[1] == 64 + 1
    seq = Transformer((5, 7), dim=16, heads=4, depth=1)
    assert seq(torch.zeros(3, 5, 7)).shape == (3, 16)
    assert Transformer((12,), (4,), dim=16, heads=2)(torch.zeros(2, 12)).shape == (2, 4)
    assert ViT is resolve("ML.Blocks.Architectures.Vision.ViT.ViT")
    with pytest.raises(UserError, match="divisible by heads"):
        Transformer((12,), dim=10, heads=3)


@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 28, 28), (3, 64, 64), (3, 4, 4)])
def test_dcgan_pair_shapes(shape: tuple[int, int, int]) -> None:
    g = Generator((16,), shape, channels=8)
    images = g(torch.randn(2, 16))
    assert images.shape == (2, *shape) and images.abs().max() <= 1
    d = Discriminator(shape, channels=8)
    assert d(images).shape == (2, 1)
    if shape == (3, 64, 64):  # the paper's generator: 4x4 map of 8*ngf channels, four doublings
        assert g.net[0].out_channels == 64 and g.side == 64


def test_random_crop_flip_and_normalize() -> None:
    torch.manual_seed(0)
    aug = RandomCropFlip(padding=2)
    x = torch.arange(2 * 3 * 6 * 6, dtype=torch.float32).view(2, 3, 6, 6) + 1
    out = aug(x)
    assert out.shape == x.shape and not torch.equal(out, x)
    assert set(out.unique().tolist()) <= set(x.unique().tolist()) | {0.0}  # crops of x and zero padding
    assert torch.equal(aug.eval()(x), x)  # eval mode: unchanged
    norm = Normalize([1.0, 2.0, 3.0], [2.0, 2.0, 2.0], (3, 6, 6))
    assert torch.allclose(norm(torch.ones(1, 3, 6, 6))[0, :, 0, 0], torch.tensor([0.0, -0.5, -1.0]))


def test_relu_stack_forward_and_backward_are_autograds() -> None:
    """The written-out MLP gives autograd's output, weight/bias gradients and input gradient, also when the
    gradient covers only the first rows of the forward's batch, or chosen rows (the rest get none)."""
    from ML.blocks.architectures import MLP
    from ML.blocks.relu_stack import ReluStack

    torch.manual_seed(0)
    net = MLP((5,), (3,), hidden_dim=16, depth=2, activation="ReLU")
    stack = ReluStack(net)
    x, grad = torch.randn(12, 5, requires_grad=True), torch.randn(8, 3)
    out = net(x)
    (out[:8] * grad).sum().backward()
    with torch.no_grad():
        torch.testing.assert_close(stack.forward(x.detach(), "t"), out.detach())
        torch.testing.assert_close(stack.input_grad("t", grad), x.grad[:8])
        stack.forward(x.detach(), "t")
        rows = torch.tensor([7, 2, 11])
        torch.testing.assert_close(stack.input_grad("t", grad[:3], rows), _input_grad(net, x.detach(), rows, grad[:3]))
        stack.forward(x.detach(), "t")
        stack.weight_grads("t", grad)
    layers = [m for m in net.modules() if isinstance(m, torch.nn.Linear)]
    for layer, (weight, bias) in zip(layers, stack.grads, strict=True):
        torch.testing.assert_close(weight, layer.weight.grad)
        torch.testing.assert_close(bias, layer.bias.grad)


def _input_grad(net: torch.nn.Module, x: torch.Tensor, rows: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
    """Autograd's gradient of ``Σ grad · net(x)[rows]`` with respect to ``x[rows]``."""
    x = x.clone().requires_grad_(True)
    with torch.enable_grad():
        (found,) = torch.autograd.grad((net(x)[rows] * grad).sum(), x)
    return found[rows]


def test_relu_stack_refuses_other_networks() -> None:
    from ML.blocks.architectures import MLP
    from ML.blocks.relu_stack import ReluStack

    with pytest.raises(TypeError, match="Linear layers with ReLU"):
        ReluStack(MLP((5,), (3,), hidden_dim=16, depth=2, activation="Tanh"))
