"""Build a named part with its shape arguments filled in from the signature (``in_features``, ...).

``instantiate(named, args, in_shape, out_shape)`` resolves ``named`` (name, class, function, instance or a
list of them for a sequence), fills whichever of ``in_shape, out_shape, in_features, out_features,
in_channels, out_channels, in_dim, out_dim`` the signature asks for and ``args`` does not give, and
returns the object. An ``nn.Module`` instance is used as given.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from ML.errors import UserError
from ML.hyperparams import schema
from ML.hyperparams.paths import resolve

Shape = tuple[int, ...]


def shape_arguments(in_shape: Shape | None, out_shape: Shape | None) -> dict[str, Any]:
    """Every inferable argument for the given shapes (channels first; ``dim`` is the last axis)."""
    known: dict[str, Any] = {}
    for side, shape in (("in", in_shape), ("out", out_shape)):
        if shape is None:
            continue
        shape = tuple(int(s) for s in shape)
        known[f"{side}_shape"] = shape
        known[f"{side}_features"] = math.prod(shape)
        known[f"{side}_channels"] = shape[0]
        known[f"{side}_dim"] = shape[-1]
    return known


def _parameters(target: Any) -> dict[str, inspect.Parameter]:
    try:
        return dict(inspect.signature(target).parameters)
    except (TypeError, ValueError):
        return {}


def _call(target: Any, args: dict[str, Any], in_shape: Shape | None, out_shape: Shape | None, label: str):
    params = _parameters(target)
    kwargs = {k: v for k, v in shape_arguments(in_shape, out_shape).items() if k in params and k not in args}
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    unknown = [k for k in args if k not in params and not takes_any]
    if params and unknown:
        accepted = ", ".join(p for p in params if p != "self") or "nothing"
        raise UserError(f"{label} does not take argument {unknown[0]!r} (it takes: {accepted}); fix the key")
    args = schema.check_arguments(params, args, label, own=getattr(target, "__module__", "").startswith("ML."))
    if params:  # a missing or surplus argument is the user's to fix; a TypeError inside the class is a bug
        try:
            inspect.signature(target).bind(**kwargs, **args)
        except TypeError as e:
            raise UserError(f"could not build {label}: {e}") from None
    return target(**kwargs, **args)


def offer(named: Any, args: Mapping[str, Any], **engine: Any) -> dict[str, Any]:
    """``args`` (the user's, verbatim) plus those of the engine's values the class declares and the user did
    not set: ``offer(config.Env, config.env, seed=0)`` gives a user Env ``seed`` only if it takes one."""
    params = _parameters(resolve(named, "part")) if not isinstance(named, (list, tuple)) else {}
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    return {**{k: v for k, v in engine.items() if (k in params or takes_any) and k not in args}, **args}


def output_shape(module: Any, in_shape: Shape) -> Shape:
    """Shape of ``module``'s output for one input of ``in_shape``, found by a dry forward pass."""
    if isinstance(module, nn.Module):
        was_training = module.training
        module.eval()
        try:
            with torch.no_grad():
                out = module(torch.zeros(1, *in_shape))
        finally:
            module.train(was_training)
    elif callable(module):
        with torch.no_grad():
            out = module(torch.zeros(1, *in_shape))
    else:
        return in_shape
    return tuple(out.shape[1:])


def rejoin(parts: list[Any]) -> list[Any]:
    """Undo YAML's split of a flow list at commas inside calls: ``[CNN,nn.Linear(64,10)]``."""
    out: list[Any] = []
    depth = 0
    for part in parts:
        if depth > 0 and isinstance(part, (str, int, float)) and not isinstance(part, bool):
            out[-1] = f"{out[-1]},{part}"
        else:
            out.append(part)
        if isinstance(out[-1], str):
            depth = out[-1].count("(") - out[-1].count(")")
    return out


def _split_args(args: dict[str, Any], parts: list[Any], label: str) -> list[dict[str, Any]]:
    """Sequence arguments: ``{1: {depth: 5}}`` goes to part 1; ``{depth: 5}`` to the one part taking it."""
    per_part: list[dict[str, Any]] = [{} for _ in parts]
    for key, value in args.items():
        if isinstance(key, int) or (isinstance(key, str) and key.isdigit()):
            index = int(key)
            if not 0 <= index < len(parts) or not isinstance(value, dict):
                raise UserError(f"{label} has no part {index} (parts 0..{len(parts) - 1}); fix the index")
            per_part[index].update(value)
            continue
        takers = [i for i, p in enumerate(parts)
                  if not isinstance(target := resolve(p, label), nn.Module) and key in _parameters(target)]
        if len(takers) != 1:
            why = "no part takes it" if not takers else f"parts {takers} all take it"
            raise UserError(f"{label} argument {key!r} is ambiguous ({why}); index it, e.g. {label.lower()}.0.{key}")
        per_part[takers[0]][key] = value
    return per_part


def instantiate(named: Any, args: dict[str, Any] | None = None, in_shape: Shape | None = None,
                out_shape: Shape | None = None, label: str = "part") -> Any:
    """The object for ``named`` with shape arguments inferred; lists become ``nn.Sequential``."""
    args = dict(args or {})
    if isinstance(named, (list, tuple)):
        named = rejoin(list(named))
        modules, shape = [], in_shape
        for i, (part, part_args) in enumerate(zip(named, _split_args(args, list(named), label), strict=True)):
            last = i == len(named) - 1
            module = instantiate(part, part_args, shape, out_shape if last else None, f"{label}.{i}")
            modules.append(module)
            shape = output_shape(module, shape) if shape is not None else None
        return nn.Sequential(*modules)
    target = resolve(named, label)
    if isinstance(target, nn.Module) or not callable(target):
        if args:
            raise UserError(f"{label} is an object given as is; it takes no arguments ({', '.join(args)})")
        return target
    if inspect.isfunction(target) and not inspect.isclass(target) and not _parameters(target):
        return target()
    return _call(target, args, in_shape, out_shape, label)
