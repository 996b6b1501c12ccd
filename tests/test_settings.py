"""Each part declares its settings once (ML.settings), defaults live in _defaults.yaml only, and the entry refuses a
key no part of the task reads (ML.claims); every built-in recipe passes that check."""

from __future__ import annotations

import ast
import dataclasses
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from ML import claims
from ML.accelerate import AccelSettings
from ML.blocks.network import NetworkSettings, build_optimizer
from ML.checkpoints import agent_settings
from ML.drivers import driver_kind
from ML.drivers.settings import DRIVERS, ReplaySettings
from ML.errors import UserError
from ML.hyperparams import recipes, resolve_config
from ML.runsettings import RunSettings
from ML.settings import Settings, claimed_keys, defaults

PARTS = [c for c in Settings.registry if c.__module__.startswith("ML.")]  # ML.claims imported them all


def _fits(value: Any, kind: Any) -> bool:
    """Whether a YAML value is of a field's annotated type (the few kinds settings use)."""
    if kind is Any:
        return True
    if isinstance(kind, types.UnionType) or typing.get_origin(kind) is typing.Union:
        return any(_fits(value, k) for k in typing.get_args(kind))
    if kind is type(None):
        return value is None
    origin = typing.get_origin(kind) or kind
    if origin is Mapping:
        return isinstance(value, Mapping)
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, origin)


def test_defaults_live_in_one_place_and_every_key_is_some_parts() -> None:
    base = defaults()
    assert claimed_keys() == set(base), (set(base) ^ claimed_keys())  # no key unread, no field undeclared
    for part in PARTS:
        hints = typing.get_type_hints(part)
        for field in dataclasses.fields(part):
            assert field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING, (
                f"{part.__name__}.{field.name} has its own default: defaults live in _defaults.yaml")
            assert _fits(base[field.name], hints[field.name]), (part.__name__, field.name, base[field.name])


def test_every_parts_settings_are_claimed_by_the_split() -> None:
    """A settings class the split does not know would make its keys refused everywhere (or never checked)."""
    known = set(claims.ALWAYS) | set(claims.AGENT_PARTS) | {c for classes in DRIVERS.values() for c in classes}
    assert set(PARTS) == known


def _config_reads(tree: ast.AST) -> set[str]:
    """Keys read as ``config.X``, ``config["X"]`` or ``config.get("X")`` (also on ``self.config``)."""
    def is_config(node: ast.AST) -> bool:
        return (isinstance(node, ast.Name) and node.id == "config") or (
            isinstance(node, ast.Attribute) and node.attr == "config")

    keys = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get" \
                and is_config(node.func.value) and node.args and isinstance(node.args[0], ast.Constant):
            keys.add(node.args[0].value)
        elif isinstance(node, ast.Subscript) and is_config(node.value) and isinstance(node.slice, ast.Constant):
            keys.add(node.slice.value)
        elif isinstance(node, ast.Attribute) and is_config(node.value) and not hasattr(dict, node.attr):
            keys.add(node.attr)
    return keys


def test_every_key_the_engine_reads_from_a_config_is_some_parts_setting() -> None:
    """A misspelled or undeclared read (``config.get("evaluate_episode")``) has no part: it would read nothing."""
    engine = Path(claims.__file__).parent
    read = {key: path.relative_to(engine) for path in engine.rglob("*.py") if "benchmarking" not in path.parts
            for key in _config_reads(ast.parse(path.read_text()))}
    assert {"Env", "Agent", "together", "train_steps"} <= set(read)  # the walk finds the entry's reads
    unclaimed = {k: str(v) for k, v in read.items() if k not in claimed_keys()}
    assert not unclaimed


def test_drivers_collectors_agents_and_blocks_take_typed_settings_and_keep_no_config() -> None:
    """The config stops at the entry's split: a driver's constructor reads its settings from it once, an agent
    is given its settings (``ML.checkpoints.build_agent``), and no driver, collector, agent or block reads a
    key of it or keeps it (``drivers/__init__.py``'s ``driver_kind`` is that split)."""
    engine = Path(claims.__file__).parent
    paths = [p for folder in ("drivers", "collectors", "agents", "blocks") for p in (engine / folder).rglob("*.py")
             if p != engine / "drivers" / "__init__.py"]
    assert len(paths) >= 35
    for path in paths:
        tree = ast.parse(path.read_text())
        assert not _config_reads(tree), (path.name, _config_reads(tree))
        kept = [n.lineno for n in ast.walk(tree) if isinstance(n, ast.Attribute) and n.attr == "config"]
        assert not kept, f"{path.name}:{kept} keeps the config"


def test_settings_read_only_their_keys_and_fill_a_partial_config_from_the_defaults() -> None:
    config = resolve_config((), {"task": "dqn", "lr": 0.01, "replay": {"capacity": 50}})
    net = NetworkSettings.from_config(config)
    assert net.lr == 0.01 and net.Model == "MLP" and not hasattr(net, "batch_size")
    assert ReplaySettings.from_config(config).replay["capacity"] == 50
    with pytest.raises(dataclasses.FrozenInstanceError):
        net.lr = 1.0  # type: ignore[misc]
    partial = RunSettings.from_config({"seed": 3})  # a config written in code: the rest from _defaults.yaml
    assert partial.seed == 3 and partial.train_steps == defaults()["train_steps"]
    assert AccelSettings.from_config({"device": "cpu"}).accelerate is False
    optim = build_optimizer(dataclasses.replace(net, Optim="SGD"), [_param()])
    assert type(optim).__name__ == "SGD" and optim.param_groups[0]["lr"] == 0.01


def test_an_agent_is_given_typed_settings_and_the_runs_own_keys() -> None:
    """``build_agent`` reads the agent's bundle from the config once; a key of the run's own (``+my_key``) that
    no part reads arrives in ``extra``, for an agent of your own."""
    config = resolve_config(argv=["task=dqn", "lr=0.01", "seed=4", "+my_key=5"])
    settings = agent_settings(config)
    assert settings.network.lr == 0.01 and settings.run.seed == 4 and settings.batch_size == config.batch_size
    assert settings.env.Env == config.Env and settings.accel.device == config.device
    assert dict(settings.extra) == {"my_key": 5} and settings.together is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.batch_size = 1  # type: ignore[misc]


def _param() -> Any:
    import torch

    return torch.nn.Parameter(torch.zeros(2))


def test_body_folds_pool_and_trunk_into_eyes() -> None:
    net = NetworkSettings.from_config({"Eyes": "CNN", "Trunk": "MLP", "trunk": {"hidden_dim": 8}})
    body = net.body()
    assert body.Eyes == ["CNN", "MLP"] and body.eyes == {"0": {}, "1": {"hidden_dim": 8}} and body.Trunk is None
    assert NetworkSettings.from_config({}).body() == NetworkSettings.from_config({})  # Eyes alone: unchanged


@pytest.mark.parametrize("recipe", sorted(p.stem for p in recipes.BUILTIN.glob("*.yaml") if not p.stem.startswith("_")))
def test_every_built_in_recipe_sets_only_keys_its_task_reads(recipe: str) -> None:
    config = resolve_config((), {"task": recipe}, ["Env=Classic"] if recipe == "RL" else [])
    assert driver_kind(config) in DRIVERS
    claims.check(config)


@pytest.mark.parametrize(("argv", "refused"), [
    (["task=classify", "offline=true"], "offline=true would be ignored: no part of this task (the supervised "
                                        "driver + ClassifierAgent) reads offline; it is read by the interactive "
                                        "driver"),
    (["task=dqn", "norm=true"], "it is read by the supervised driver"),
    (["task=classify", "vlog=true"], "vlog=true would be ignored"),
    (["task=classify", "replay.capacity=5"], "replay.* would be ignored"),
    (["task=ppo", "offline=true"], "(the on-policy driver + PPOAgent)"),
    (["task=dqn", "env.task=[CartPole-v1,Acrobot-v1]", "env_process=true"], "(the together driver + DQNAgent)"),
    (["task=random", "lr=0.1"], "lr=0.1 would be ignored"),
    (["task=dqn", "+foo=1"], "it is read by no part of the engine"),
    (["task=drqv2_states", "Model=CNN"], "Model=CNN would be ignored: DrQV2Agent does not build Model"),
    (["Env=Classic", "env.task=CartPole-v1", "generate=true"], "(the interactive driver + the task's agent)"),
])
def test_a_key_no_part_of_the_task_reads_is_refused(argv: list[str], refused: str) -> None:
    with pytest.raises(UserError) as error:
        claims.check(resolve_config((), {}, argv))
    assert refused in str(error.value) and "\n" not in str(error.value), str(error.value)


@pytest.mark.parametrize("argv", [
    ["task=classify", "batch_size=32", "Scheduler=StepLR", "scheduler.step_size=10", "workers=0"],
    ["task=dqn", "replay.capacity=100", "evaluate_envs=2", "env_process=true", "Trunk=MLP"],
    ["task=dqn", "env.task=[CartPole-v1,Acrobot-v1]"],
    ["Env=Classic", "env.task=CartPole-v1", "Model=MLP", "model.hidden_dim=8"],  # agent by action space
])
def test_keys_the_task_reads_pass(argv: list[str]) -> None:
    claims.check(resolve_config((), {}, argv))


def test_your_own_agent_may_read_any_key_but_a_drivers(monkeypatch: pytest.MonkeyPatch) -> None:
    """examples/my_agent's QAgent declares no ``reads``: its own keys pass, another driver's do not."""
    monkeypatch.chdir(Path(__file__).resolve().parents[1] / "examples" / "my_agent")
    claims.check(resolve_config((), {}, ["task=dqn", "Agent=my_agent.QAgent", "agent={}", "+my_key=1", "Eyes=CNN"]))
    config = resolve_config((), {}, ["task=dqn", "Agent=my_agent.QAgent", "agent={}", "norm=true"])
    with pytest.raises(UserError, match="norm=true would be ignored: no part of this task .*QAgent"):
        claims.check(config)
