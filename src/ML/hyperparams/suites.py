"""Suite and protocol files (``ML/recipes/suites``, ``ML/recipes/protocols``): what a suite runs, what a
published protocol sets. The engine reads them (a DMC task on a protocol suite gets the protocol's arguments,
``hyperparams/select.py``) and the pipeline expands them into its grid (``ML.benchmarking.grid``), so they are
read here, in the engine, which the pipeline imports and never the other way round."""

from __future__ import annotations

import functools
import json
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ML.errors import UserError

SUITES_DIR = Path(__file__).resolve().parent.parent / "recipes" / "suites"
PROTOCOLS_DIR = Path(__file__).resolve().parent.parent / "recipes" / "protocols"


class ProtocolError(UserError):
    """A bad protocol or suite file; one line naming the problem and the fix."""


@dataclass(frozen=True)
class Protocol:
    name: str
    source: str
    args: dict[str, Any] = field(default_factory=dict)
    difficulties: dict[str, dict[str, Any]] = field(default_factory=dict)
    tasks: dict[str, dict[str, Any]] = field(default_factory=dict)
    path: Path | None = None

    def task_args(self, task: str, difficulty: str | None) -> dict[str, Any]:
        """The protocol's arguments for one task (``difficulty`` checked against the file's)."""
        if difficulty is None and self.difficulties:
            raise ProtocolError(f"protocol {self.name} sets its arguments per difficulty: give the suite a "
                                f"difficulty: (one of {', '.join(self.difficulties)})")
        if difficulty is not None and difficulty not in self.difficulties:
            raise ProtocolError(f"unknown difficulty {difficulty!r} for protocol {self.name} "
                                f"(known: {', '.join(self.difficulties) or 'none'}); fix the suite's "
                                f"difficulty: or add it to {self.path}")
        level = self.difficulties.get(difficulty) if difficulty is not None else None
        return {**self.args, **(level or {}), **self.tasks.get(task, {})}


def known_protocols() -> list[str]:
    return sorted(p.stem for p in PROTOCOLS_DIR.glob("*.yaml"))


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ProtocolError(f"{where} must be a mapping of key: value, not {type(value).__name__}")
    return dict(value)


@functools.cache
def load_protocol(name: str) -> Protocol:
    """A protocol by name (``drqv2``, ``atari100k``), or ProtocolError naming the known ones.

    A protocol file (``ML/recipes/protocols/NAME.yaml``) holds the arguments a published protocol sets, for
    every task, per difficulty and per task::

        source: facebookresearch/drqv2 cfgs/task/*.yaml (MIT)
        args: {evaluate_episodes: 10}                      # every task
        difficulties:
          easy: {train_steps: 550000, agent.stddev_schedule: linear(1.0,0.1,100000)}
        tasks:
          walker_walk: {agent.n_step: 1, batch_size: 512}  # one task, over its difficulty

    A suite names one (``protocol: drqv2``) and the difficulty of its tasks (``difficulty: easy``). A cell's
    arguments are, later ones winning: the protocol's ``args``, its difficulty's, its task's, the suite's own
    ``args`` and ``task_args``, then the grid entry's ``args``.
    """
    path = PROTOCOLS_DIR / f"{name}.yaml"
    if not isinstance(name, str) or not name or not path.is_file():
        raise ProtocolError(f"unknown protocol {name!r}: expected {path} "
                            f"(known protocols: {', '.join(known_protocols())})")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ProtocolError(f"protocol file {path} is not valid YAML: {str(e).splitlines()[0]}") from None
    difficulties = {str(k): _mapping(v, f"{path}: difficulties.{k}")
                    for k, v in _mapping(data.get("difficulties"), f"{path}: difficulties").items()}
    tasks = {str(k): _mapping(v, f"{path}: tasks.{k}")
             for k, v in _mapping(data.get("tasks"), f"{path}: tasks").items()}
    return Protocol(name, str(data.get("source") or ""), _mapping(data.get("args"), f"{path}: args"),
                    difficulties, tasks, path)


class ConfigError(ValueError):
    """A bad suite file or benchmark config; its message is one line naming the problem and the fix."""


# how each environment kind names its task on the ML command line
SUITE_ARGS = {
    "Classic": ["Env=Classic", "env.task={task}"],
    "Classify": ["Dataset={task}"],
    "Atari": ["Env=Atari", "env.game={task}"],
    "DMC": ["Env=DMC", "env.task={task}"],
    "MuJoCo": ["Env=MuJoCo", "env.task={task}"],
}


SUITE_KEYS = {"env", "tasks", "args", "task_args", "protocol", "difficulty"}


@dataclass(frozen=True)
class Suite:
    name: str
    env: str
    tasks: tuple[str, ...]
    args: tuple[str, ...] = ()
    path: Path | None = None
    protocol: str | None = None
    difficulty: str | None = None
    task_args: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def cell_args(self, task: str) -> list[str]:
        """The protocol's arguments for ``task``, then the suite's own (``key=value`` tokens)."""
        own = [*self.args, *self.task_args.get(task, ())]
        if self.protocol is None:
            return own
        return [*format_args(load_protocol(self.protocol).task_args(task, self.difficulty)), *own]


def known_suites() -> list[str]:
    return sorted(p.stem for p in SUITES_DIR.glob("*.yaml"))


def load_suite(name: str) -> Suite:
    """A suite by file name (case-insensitive, ``Classic`` → classic.yaml) or by path to a YAML file.

    A suite file (``ML/recipes/suites/NAME.yaml``) names its environment kind, tasks and protocol::

        env: DMC                # Classic | Classify | Atari | DMC | MuJoCo
        protocol: drqv2         # optional: ML/recipes/protocols/drqv2.yaml
        difficulty: easy        # optional: the protocol's difficulty of every task below
        tasks: [cartpole_balance, walker_walk]
        args: {}                # optional extra ML arguments for every task of the suite
        task_args: {}           # optional, per task: {walker_walk: {batch_size: 512}}
    """
    path = Path(name)
    if not (path.suffix in (".yaml", ".yml") and path.is_file()):
        matches = [p for p in SUITES_DIR.glob("*.yaml") if p.stem.lower() == name.lower()]
        if not matches:
            raise ConfigError(
                f"no suite {name!r}: expected {SUITES_DIR / (name.lower() + '.yaml')} "
                f"(known suites: {', '.join(known_suites())})"
            )
        path = matches[0]
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"suite file {path} is not valid YAML: {str(e).splitlines()[0]}") from None
    unknown = sorted(set(data) - SUITE_KEYS) if isinstance(data, dict) else []
    if unknown:
        raise ConfigError(f"suite file {path}: unknown key {unknown[0]!r} (allowed: {', '.join(sorted(SUITE_KEYS))}); "
                          "a budget comes from the suite's protocol or a grid entry's args")
    env, tasks = data.get("env"), data.get("tasks")
    if env not in SUITE_ARGS:
        raise ConfigError(f"suite file {path}: env must be one of {', '.join(SUITE_ARGS)}, not {env!r}")
    if not isinstance(tasks, list) or not tasks or not all(isinstance(t, str) for t in tasks):
        raise ConfigError(f"suite file {path}: tasks must be a non-empty list of names")
    task_args = data.get("task_args") or {}
    if not isinstance(task_args, dict):
        raise ConfigError(f"suite file {path}: task_args must map task names to their arguments")
    stray = [t for t in task_args if t not in tasks]
    if stray:
        raise ConfigError(f"suite file {path}: task_args names {', '.join(map(str, stray))}, not in the suite's "
                          f"tasks ({', '.join(tasks)}); fix the name or add it to tasks")
    protocol, difficulty = data.get("protocol"), data.get("difficulty")
    if difficulty is not None and protocol is None:
        raise ConfigError(f"suite file {path}: difficulty {difficulty!r} needs a protocol: "
                          f"(one of {', '.join(known_protocols())})")
    suite = Suite(path.stem, env, tuple(tasks), tuple(format_args(data.get("args"))), path,
                  None if protocol is None else str(protocol), None if difficulty is None else str(difficulty),
                  {str(k): tuple(format_args(v)) for k, v in task_args.items()})
    try:
        for task in tasks:
            suite.cell_args(task)
    except ProtocolError as e:
        raise ConfigError(f"suite file {path}: {e}") from None
    return suite


def format_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, (list, dict)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def format_args(args: Any) -> list[str]:
    """Extra ML arguments from a mapping, a list of ``key=value`` or one string, as ``key=value`` tokens."""
    if not args:
        return []
    if isinstance(args, dict):
        return [f"{k}={format_value(v)}" for k, v in args.items()]
    if isinstance(args, str):
        return shlex.split(args)
    return [str(a) for a in args]
