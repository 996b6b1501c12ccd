"""The type and range of every engine setting, checked once when the config is resolved.

``TYPES`` gives each key of ``recipes/_defaults.yaml`` a kind (``Int(ge=0)``, ``Bool``, ``Part``...). The
checks run in pydantic-core (the validator under pydantic 2, 13 ms to import beside torch), so a wrong type
or range is one line before any file is written: ``train_steps=banana: expected an integer ≥ 0``.

The constructor arguments under ``agent.*``, ``env.*``, ``eyes.*``... are checked when their part is built
(``check_arguments``), against the signature's simple annotations (``n_step: int``) and, for the engine's
own classes, the ranges in ``RANGES``. Keys a user adds with ``+key=value`` are not typed.
"""

from __future__ import annotations

import functools
import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ML.errors import UserError


class SettingError(UserError):
    """A setting of the wrong type or range; ``key`` is its dotted name."""

    def __init__(self, message: str, key: str):
        super().__init__(message)
        self.key = key


@dataclass(frozen=True)
class Kind:
    """One setting's type: its description for messages and a builder of its pydantic-core schema."""

    description: str
    build: Any  # () -> core schema
    fields: dict[str, Kind] | None = None  # a section's own keys (replay.save, ...)


def _core() -> Any:
    from pydantic_core import core_schema

    return core_schema


def _show(value: Any) -> str:
    """A value as the user would have typed it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_show(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_show(v)}" for k, v in value.items()) + "}"
    return str(value)


def _or(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + f" or {items[-1]}"


def _integral(value: Any) -> Any:
    """``1e5`` (YAML reads a float) and ``numpy.int64(3)`` count as integers; 2.5 and ``true`` do not."""
    if isinstance(value, bool):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    return math.trunc(value) if isinstance(value, numbers.Real) and float(value).is_integer() else value


def _real(value: Any) -> Any:
    """``numpy.float32(0.1)`` counts as a number; ``true`` does not."""
    return float(value) if isinstance(value, numbers.Real) and not isinstance(value, bool) else value


def _bounds(**bounds: float | None) -> str:
    signs = {"ge": "≥", "gt": ">", "le": "≤", "lt": "<"}
    return " and".join(f" {signs[k]} {v:g}" for k, v in bounds.items() if v is not None)


def Int(ge: int | None = None, gt: int | None = None, le: int | None = None) -> Kind:
    return Kind(f"an integer{_bounds(ge=ge, gt=gt, le=le)}", lambda: _core().no_info_before_validator_function(
        _integral, _core().int_schema(strict=True, ge=ge, gt=gt, le=le)))


def Float(gt: float | None = None, ge: float | None = None, le: float | None = None,
          lt: float | None = None) -> Kind:
    return Kind(f"a number{_bounds(ge=ge, gt=gt, le=le, lt=lt)}", lambda: _core().no_info_before_validator_function(
        _real, _core().float_schema(strict=True, gt=gt, ge=ge, le=le, lt=lt, allow_inf_nan=False)))


Bool = Kind("true or false", lambda: _core().bool_schema(strict=True))
Str = Kind("a non-empty string", lambda: _core().str_schema(strict=True, min_length=1))


def Choice(*values: Any) -> Kind:
    return Kind(_or([_show(v) for v in values]), lambda: _core().literal_schema(list(values)))


def Either(*kinds: Kind, description: str = "") -> Kind:
    return Kind(description or _or([k.description for k in kinds]),
                lambda: _core().union_schema([k.build() for k in kinds], mode="left_to_right"))


def Null(kind: Kind) -> Kind:
    return Kind(f"{kind.description} or null", lambda: _core().nullable_schema(kind.build()))


def _part(value: Any) -> Any:
    if isinstance(value, (bool, int, float, dict)):
        raise ValueError("not a part")
    return value


# A part (Uppercase=...): a name, a list of names, or an object given in code; never a number or mapping.
Part = Kind("a name (e.g. MLP), a list of names, or null",
            lambda: _core().no_info_plain_validator_function(_part))
# A part's constructor arguments (eyes.*, env.*...): a mapping of key: value.
Args = Kind("a mapping of key: value (e.g. {depth: 2})", lambda: _core().dict_schema(strict=True))


def Section(fields: dict[str, Kind]) -> Kind:
    return Kind("a mapping of key: value", lambda: _typed(fields), fields)


# together: a list of task specs (each a recipe name and overrides); share: a list of part names
Tasks = Kind("a list of task specs, each a mapping (e.g. [{task: classify}, {task: dqn}])",
             lambda: _core().list_schema(_core().dict_schema(strict=True)))
Names = Kind("a list of part names (e.g. [Trunk])", lambda: _core().list_schema(Str.build()))
LOAD = Either(Bool, Str, description="true, false, a path or words naming a run")
TYPES: dict[str, Kind] = {
    "task": Null(Str), "experiment": Str, "seed": Int(), "results": Str, "run_dir": Null(Str),
    "train_steps": Int(ge=0), "evaluate_per_steps": Int(ge=0), "evaluate_episodes": Int(ge=0),
    "log_per_steps": Int(ge=0), "save": Bool, "save_per_steps": Null(Int(ge=0)), "load": LOAD, "resume": Bool,
    "batch_size": Int(gt=0), "lr": Float(gt=0), "threads": Null(Int(gt=0)), "device": Null(Str),
    "accelerate": Bool, "compile": Bool, "workers": Null(Int(ge=0)), "world_size": Null(Int(gt=0)),
    "lr_scaling": Null(Choice("linear")), "progress": Choice("auto", True, False), "vlog": Bool, "debug": Bool,
    "Agent": Part, "agent": Args, "Env": Part, "env": Args, "Dataset": Part, "dataset": Args,
    "TestDataset": Part, "testdataset": Args, "norm": Bool, "generate": Bool,
    "Eyes": Part, "eyes": Args, "Model": Part, "model": Args, "Optim": Part, "optim": Args,
    "Scheduler": Part, "scheduler": Args, "Aug": Part, "aug": Args, "Pool": Part, "pool": Args,
    "Trunk": Part, "trunk": Args, "Discriminator": Part, "discriminator": Args, "wandb": Bool,
    "offline": Bool, "stream": Bool, "env_process": Bool, "overwrite": Bool, "trust_code": Bool,
    "evaluate_episodes_final": Null(Int(gt=0)),
    "evaluate_envs": Int(gt=0),
    "together": Null(Tasks), "share": Null(Names), "share_width": Int(gt=0),
    "together_schedule": Choice("episodes", "proportional"),
    "replay": Section({"save": Bool, "load": Bool, "capacity": Int(gt=0)}),
}


def _typed(fields: dict[str, Kind]) -> Any:
    core = _core()
    return core.typed_dict_schema({k: core.typed_dict_field(kind.build(), required=False)
                                   for k, kind in fields.items()}, extra_behavior="allow")


@functools.lru_cache(maxsize=1)
def _validator() -> Any:
    from pydantic_core import SchemaValidator

    return SchemaValidator(_typed(TYPES))


def _kind_at(loc: tuple[Any, ...]) -> tuple[str, Kind | None]:
    """The dotted key and its kind for a pydantic-core error location (union branch tags skipped)."""
    fields: dict[str, Kind] | None = TYPES
    path, kind = [], None
    for part in loc:
        if not isinstance(part, str) or fields is None or part not in fields:
            break
        path.append(part)
        kind = fields[part]
        fields = kind.fields
    return ".".join(path), kind


def _in_order(original: dict[str, Any], checked: dict[str, Any], fields: dict[str, Kind]) -> dict[str, Any]:
    """The checked values in the user's key order (run.json reads as the recipe was written)."""
    out = {}
    for key in original:
        value = checked[key]
        section = fields.get(key)
        if section is not None and section.fields and isinstance(value, dict):
            value = _in_order(original[key], value, section.fields)
        out[key] = value
    return out


def check(config: dict[str, Any]) -> dict[str, Any]:
    """``config`` with its engine settings validated (``1e5`` → 100000); a wrong one is a ``UserError``."""
    from pydantic_core import ValidationError

    try:
        checked = _validator().validate_python(config)
    except ValidationError as e:
        error = e.errors()[0]
        key, kind = _kind_at(tuple(error["loc"]))
        node: Any = config
        for part in key.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        expected = kind.description if kind is not None else error["msg"]
        raise SettingError(f"{key}={_show(node)}: expected {expected}", key) from None
    return _in_order(config, checked, TYPES)


_ANNOTATED: dict[str, Callable[..., Kind]] = {"int": Int, "float": Float, "bool": lambda **_: Bool,
              "str": lambda **_: Kind("a string", lambda: _core().str_schema(strict=True))}
_UNIT: dict[str, float] = {"ge": 0, "le": 1}
# The ranges of the engine's own parts' arguments (agent.*, env.*, eyes.*...), by argument name: a class of
# ML.* whose signature annotates ``gamma: float`` gets ``gamma`` checked in [0, 1].
RANGES: dict[str, dict[str, float]] = {
    **dict.fromkeys(("gamma", "tau", "critic_tau", "eps_start", "eps_end", "eval_eps", "label_smoothing",
                     "dropout", "sticky_actions"), _UNIT),
    "test_fraction": {"gt": 0, "lt": 1},
    **dict.fromkeys(("n_step", "update_every", "updates_per_step", "target_update", "frame_stack",
                     "action_repeat", "frame_skip", "eval_batch_size", "eval_samples", "z_dim", "grid",
                     "feature_dim", "hidden_dim", "channels", "heads", "dim", "width", "kernel_size", "stride",
                     "size", "screen_size", "num_envs"), {"ge": 1}),
    **dict.fromkeys(("learn_start", "eps_decay_steps", "eps_hold_steps", "num_expl_steps", "depth", "pad",
                     "padding", "noop_max", "grad_clip", "reward_clip", "stddev_clip"), {"ge": 0}),
    "mlp_ratio": {"gt": 0},
}


@functools.cache
def _argument_validator(annotation: str, name: str, own: bool) -> tuple[Kind, Any] | None:
    """A validator for an argument annotated ``int``, ``float``, ``bool``, ``str`` (or ``| None``); an
    argument of the engine's own classes also gets its range from ``RANGES``."""
    from pydantic_core import SchemaValidator

    base, _, rest = annotation.replace("Optional[", "").rstrip("]").partition(" | ")
    make = _ANNOTATED.get(base.strip())
    if make is None or rest.strip() not in ("", "None"):
        return None
    bounds = RANGES.get(name, {}) if own and base.strip() in ("int", "float") else {}
    kind = make(**bounds)
    kind = Null(kind) if rest.strip() == "None" or annotation.startswith("Optional[") else kind
    return kind, SchemaValidator(kind.build())


def check_arguments(parameters: dict[str, Any], args: dict[str, Any], label: str, own: bool = False) -> dict[str, Any]:
    """A part's arguments checked against its signature's simple annotations (``n_step: int``) and, for
    the engine's own classes (``own``), their ranges."""
    from pydantic_core import ValidationError

    out = dict(args)
    for key, value in args.items():
        param = parameters.get(key)
        annotation = getattr(param, "annotation", None)
        if isinstance(annotation, type):
            annotation = annotation.__name__
        if not isinstance(annotation, str) or (found := _argument_validator(annotation, key, own)) is None:
            continue
        kind, validator = found
        try:
            out[key] = validator.validate_python(value)
        except ValidationError:
            raise UserError(f"{label.lower()}.{key}={_show(value)}: expected {kind.description}") from None
    return out
