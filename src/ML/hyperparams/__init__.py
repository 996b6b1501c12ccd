"""The hyperparameter language: recipes < code < command line, merged into one resolved config."""

from __future__ import annotations

import difflib
from typing import Any

from ML.errors import UserError
from ML.hyperparams import recipes, schema, select
from ML.hyperparams.instantiate import instantiate, output_shape
from ML.hyperparams.parse import Override, from_kwargs, parse_tokens
from ML.hyperparams.paths import resolve

__all__ = ["Config", "instantiate", "output_shape", "resolve", "resolve_config", "parse_tokens"]


class Config(dict):
    """A nested dict with attribute access (``cfg.env.task``) for readability in the engine."""

    def __getattr__(self, name: str) -> Any:
        try:
            value = self[name]
        except KeyError:
            raise AttributeError(name) from None
        return Config(value) if isinstance(value, dict) and not isinstance(value, Config) else value

    def __setattr__(self, name: str, value: Any) -> None:
        self[name] = value


def _argument_dicts(declared: dict[str, Any]) -> set[str]:
    """Lowercase sections holding an ``Uppercase`` part's constructor arguments (``eyes`` for ``Eyes``)."""
    return {k.lower() for k in declared if k[:1].isupper()}


def _check_declared(override: Override, declared: dict[str, Any]) -> None:
    if override.new:
        return
    path, node = override.path, declared
    if path[0] in _argument_dicts(declared):
        return  # eyes.depth=5: checked against the constructor's signature when built
    for depth, key in enumerate(path):
        if not isinstance(node, dict) or key not in node:
            options = list(node) if isinstance(node, dict) else []
            close = difflib.get_close_matches(key, options, n=1)
            hint = f"did you mean {'.'.join((*path[:depth], close[0]))!r}? " if close else ""
            raise UserError(f"unknown key {override.key!r}: {hint}write +{override.key}=... to add a new key")
        node = node[key]


def _assign(config: dict[str, Any], override: Override) -> None:
    node = config
    for key in override.path[:-1]:
        if not isinstance(node.get(key), dict):
            node[key] = {}
        node = node[key]
    node[override.path[-1]] = override.value


def _expand_strings(args: tuple[Any, ...]) -> list[Override]:
    out = []
    for arg in args:
        if not isinstance(arg, str):
            raise UserError(f"positional arguments to ML.launch must be 'key=value' strings, not {arg!r}")
        out.extend(parse_tokens([arg]))
    return out


def resolve_config(code_args: tuple[Any, ...] = (), code_kwargs: dict[str, Any] | None = None,
                   argv: list[str] | None = None) -> Config:
    """Merge defaults < recipe (``task=``) < code < command line into one config, refusing unknown keys and
    values of the wrong type or range (``ML.hyperparams.schema``)."""
    code = _expand_strings(code_args) + from_kwargs(code_kwargs or {})
    cli = parse_tokens(list(argv or []))
    task = None
    for override in code + cli:  # the command line wins, so scan it last
        if override.path == ("task",):
            task = override.value
    declared = recipes.read(recipes.BUILTIN / "_defaults.yaml")
    if task is not None:
        recipe = recipes.load(str(task))
        if "by_action_space" in recipe:  # task=RL: DQN or DrQ-v2 by the environment's action space
            recipe = select.pick(recipe, code + cli)
        if "by_task" in recipe:  # per-task settings (dqn: Acrobot-v1 at lr 5e-4)
            recipe = select.by_task(recipe, code + cli)
        declared = recipes.merge(declared, recipe)
    config = recipes.merge(declared, {})
    for override in code + cli:
        _check_declared(override, declared)
        _assign(config, override)
    try:
        return Config(schema.check(config))
    except schema.SettingError as e:
        if task is None or any(e.key == o.key or e.key.startswith(o.key + ".") for o in code + cli):
            raise
        raise UserError(f"{e} (set by recipe {task}: fix it there, or pass {e.key}=...)") from None
