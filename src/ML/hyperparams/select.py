"""Recipe parts chosen by the environment a command asks for: another recipe by its action space
(``task=RL``), per-task settings by its task name (``by_task``)."""

from __future__ import annotations

import inspect
from typing import Any

from ML.errors import UserError
from ML.hyperparams import recipes, suites
from ML.hyperparams.instantiate import instantiate
from ML.hyperparams.parse import Override
from ML.hyperparams.paths import resolve

KINDS = ("discrete", "discrete_pixels", "continuous", "continuous_pixels")


def _env_of(recipe: dict[str, Any], overrides: list[Override]) -> tuple[Any, dict[str, Any]]:
    """The ``Env`` and ``env`` arguments after the overrides (the recipe's where they set none)."""
    env_class, env_args = recipe.get("Env"), dict(recipe.get("env") or {})
    for override in overrides:
        if override.path == ("Env",):
            env_class = override.value
        elif override.path == ("env",) and isinstance(override.value, dict):
            env_args = dict(override.value)
        elif override.path[0] == "env" and len(override.path) == 2:
            env_args[override.path[1]] = override.value
    return env_class, env_args


def kind(env_class: Any, env_args: dict[str, Any]) -> tuple[str, Any]:
    """(``discrete`` | ``discrete_pixels`` | ``continuous`` | ``continuous_pixels``, the task's spec)."""
    env = instantiate(env_class, {**env_args, "seed": 0, "evaluation": True}, label="Env")
    try:
        spec = env.task_spec
    finally:
        env.close()
    pixels = len(spec.obs_shape) == 3
    return ("discrete" if spec.discrete else "continuous") + ("_pixels" if pixels else ""), spec


def pick(recipe: dict[str, Any], overrides: list[Override]) -> dict[str, Any]:
    """The recipe ``by_action_space`` names for the environment the overrides ask for.

    A recipe with a ``by_action_space`` mapping names one recipe per kind of task::

        by_action_space:
          discrete: dqn                 # discrete actions, state observations (classic control)
          discrete_pixels: atari100k    # discrete actions, image observations (Atari)
          continuous: drqv2_states      # continuous actions, states (DMC env.pixels=false)
          continuous_pixels: drqv2      # continuous actions, images (DMC)

    The environment the command asks for (its ``Env`` and ``env.*``, else the recipe's) is built once to read
    its action space, then the chosen recipe replaces this one; ``task`` keeps its name, so runs land under
    ``runs/RL/...``. A DeepMind Control task on a suite with a published protocol (``dmc_easy`` ...) also gets
    that protocol's arguments (DrQ-v2's budget, std schedule and per-task settings), under the command line's.
    """
    choices = recipe.get("by_action_space") or {}
    env_class, env_args = _env_of(recipe, overrides)
    if env_class is None:
        raise UserError("this recipe picks its agent by the environment's action space: set Env=... "
                        "(e.g. Env=Atari +env.game=pong, Env=DMC +env.task=cheetah_run)")
    found, spec = kind(env_class, env_args)
    name = choices.get(found)
    if name is None:
        raise UserError(f"{spec.suite} task {spec.task} has {found.replace('_', ' from ')} actions and this "
                        f"recipe names no recipe for them (by_action_space: {', '.join(choices) or 'none'}); "
                        "add one or pick a recipe with task=...")
    chosen = recipes.load(str(name))
    if chosen.get("Env") != env_class:  # e.g. Pendulum-v1 (Classic) under a recipe written for DMC
        chosen = {**chosen, "Env": env_class, "env": {}}
    if spec.suite == "DMC":
        chosen = recipes.merge(chosen, _dmc_protocol(spec.task))
    return chosen


def task_name(recipe: dict[str, Any], overrides: list[Override]) -> str | None:
    """The task the command runs: its ``env.task`` (``env.game`` for Atari), else the Env's default."""
    env_class, env_args = _env_of(recipe, overrides)
    for key in ("task", "game"):
        if key in env_args:
            return str(env_args[key])
    if env_class is None:
        return None
    try:
        parameters = inspect.signature(resolve(env_class, "Env")).parameters
    except (TypeError, ValueError):  # an Env object given in code, not a class: no default to read
        return None
    for key in ("task", "game"):
        if key in parameters and parameters[key].default is not inspect.Parameter.empty:
            return str(parameters[key].default)
    return None


def by_task(recipe: dict[str, Any], overrides: list[Override]) -> dict[str, Any]:
    """The recipe with its ``by_task`` settings for the command's task merged in (and the mapping removed).

    Published agents are tuned per task (rl-zoo3's ``hyperparams/dqn.yml`` keys its settings by env id), so a
    recipe may too; the code and the command line still win::

        by_task:
          Acrobot-v1: {lr: 0.0005}      # nested like the recipe itself
    """
    recipe = dict(recipe)
    table = recipe.pop("by_task") or {}
    if not isinstance(table, dict) or not all(isinstance(v, dict) for v in table.values()):
        raise UserError("by_task in a recipe must map task names to recipe keys (by_task: {Acrobot-v1: "
                        "{lr: 0.0005}}); fix the recipe")
    task = task_name(recipe, overrides)
    return recipes.merge(recipe, table[task]) if task in table else recipe


def _dmc_protocol(task: str, protocol: str = "drqv2") -> dict[str, Any]:
    """DrQ-v2's published protocol's arguments for a DMC task (nested), from its suite that lists the task
    (the recipes ``task=RL`` picks for DMC are DrQ-v2's; other protocols, e.g. pytorch_sac's, are a grid's)."""
    for name in suites.known_suites():
        try:
            suite = suites.load_suite(name)
        except suites.ConfigError as e:
            raise UserError(str(e)) from None
        if suite.env == "DMC" and suite.protocol == protocol and task in suite.tasks:
            nested: dict[str, Any] = {}
            for key, value in suites.load_protocol(suite.protocol).task_args(task, suite.difficulty).items():
                *parents, last = str(key).split(".")
                node = nested
                for part in parents:
                    node = node.setdefault(part, {})
                node[last] = value
            return nested
    return {}
