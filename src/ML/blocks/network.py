"""``input → Eyes → Model → output``: the network every agent builds from the config's parts."""

from __future__ import annotations

from typing import Any

from torch import nn

from ML.hyperparams import instantiate, output_shape


def build_network(config: Any, in_shape: tuple[int, ...], out_shape: tuple[int, ...]) -> nn.Sequential:
    """Eyes (body) then Model (head), each part's shape arguments inferred from the one before."""
    eyes = instantiate(config["Eyes"], config.get("eyes") or {}, in_shape, None, "Eyes")
    hidden = output_shape(eyes, in_shape)
    model = instantiate(config["Model"], config.get("model") or {}, hidden, out_shape, "Model")
    return nn.Sequential(eyes, model)


def build_optimizer(config: Any, params: Any) -> Any:
    """``Optim`` (a name, path or class) with ``lr`` and ``optim.*`` arguments."""
    args = {"params": params, "lr": config["lr"], **(config.get("optim") or {})}
    return instantiate(config["Optim"], args, label="Optim")
