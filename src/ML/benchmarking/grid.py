"""The benchmark grid: validate config.yaml against its schema, read suite files, expand recipe × task × seed."""

from __future__ import annotations

import copy
import json
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from ML.benchmarking import protocols

SUITES_DIR = Path(__file__).resolve().parent.parent / "recipes" / "suites"
SCHEMA = Path(__file__).with_name("config.schema.yaml")  # package data: the workflow validates with it too

# how each environment kind names its task on the ML command line
SUITE_ARGS = {
    "Classic": ["Env=Classic", "env.task={task}"],
    "Classify": ["Dataset={task}"],
    "Atari": ["Env=Atari", "env.game={task}"],
    "DMC": ["Env=DMC", "env.task={task}"],
    "MuJoCo": ["Env=MuJoCo", "env.task={task}"],
}


SUITE_KEYS = {"env", "tasks", "args", "task_args", "protocol", "difficulty"}


class ConfigError(ValueError):
    """A bad benchmark config; its message is one line naming the problem and the fix."""


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
        return [*format_args(protocols.load(self.protocol).task_args(task, self.difficulty)), *own]


@dataclass(frozen=True)
class Cell:
    recipe: str
    suite: str  # the suite file's name (classic, classify, ...)
    env: str  # the environment kind, the run directory's <suite> level (Classic, Classify, ...)
    task: str
    seed: int
    args: tuple[str, ...] = field(default=())

    @property
    def key(self) -> tuple[str, str, str, str]:
        return self.recipe, self.env, self.task, str(self.seed)

    def run_dir(self, results: str | Path, experiment: str) -> Path:
        return Path(results) / experiment / "runs" / self.recipe / self.env / self.task / str(self.seed)

    def argv(self, experiment: str, results: str | Path, threads: int) -> list[str]:
        return [
            f"task={self.recipe}",
            *(a.format(task=self.task) for a in SUITE_ARGS[self.env]),
            f"seed={self.seed}",
            f"experiment={experiment}",
            f"results={results}",
            f"threads={threads}",
            "progress=false",
            *self.args,
        ]

    def shell_args(self, experiment: str, results: str | Path, threads: int) -> str:
        return " ".join(shlex.quote(a) for a in self.argv(experiment, results, threads))


def known_suites() -> list[str]:
    return sorted(p.stem for p in SUITES_DIR.glob("*.yaml"))


def load_suite(name: str) -> Suite:
    """A suite by file name (case-insensitive, ``Classic`` → classic.yaml) or by path to a YAML file.

    A suite file (``ML/recipes/suites/NAME.yaml``) names its environment kind, tasks and protocol::

        env: DMC                # Classic | Classify | Atari | DMC | MuJoCo
        protocol: drqv2         # optional: ML/recipes/protocols/drqv2.yaml (ML.benchmarking.protocols)
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
                          f"(one of {', '.join(protocols.known())})")
    suite = Suite(path.stem, env, tuple(tasks), tuple(format_args(data.get("args"))), path,
                  None if protocol is None else str(protocol), None if difficulty is None else str(difficulty),
                  {str(k): tuple(format_args(v)) for k, v in task_args.items()})
    try:
        for task in tasks:
            suite.cell_args(task)
    except protocols.ProtocolError as e:
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


def merge_args(*groups: list[str]) -> tuple[str, ...]:
    """``key=value`` tokens with one per key, the last given winning, in first-seen key order."""
    out: dict[str, str] = {}
    for token in (t for group in groups for t in group):
        key = token.split("=", 1)[0].lstrip("+")
        out.pop(key, None)  # a later setting moves to the end, where ML's own rule (last wins) agrees
        out[key] = token
    return tuple(out.values())


def _path(parts: Any) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _fill_defaults(schema: dict[str, Any], instance: Any) -> None:
    """Set the schema's ``default:`` values where the instance lacks the key (objects, recursively)."""
    if not isinstance(instance, dict):
        return
    for key, sub in (schema.get("properties") or {}).items():
        if key not in instance and "default" in sub:
            instance[key] = copy.deepcopy(sub["default"])
        if key in instance:
            _fill_defaults(sub, instance[key])
            if isinstance(instance[key], list) and isinstance(sub.get("items"), dict):
                for item in instance[key]:
                    _fill_defaults(sub["items"], item)


def validate(config: dict[str, Any], schema_path: str | Path = SCHEMA) -> dict[str, Any]:
    """The config with its defaults filled in, or ConfigError with one line naming the first problem."""
    schema = yaml.safe_load(Path(schema_path).read_text())
    if not isinstance(config, dict):
        raise ConfigError(f"the config must be a mapping of key: value, not {type(config).__name__}")
    validator = jsonschema.Draft7Validator(schema)
    error = jsonschema.exceptions.best_match(validator.iter_errors(config))
    if error is not None:
        where = _path(error.absolute_path)
        message = error.message
        if error.validator == "additionalProperties":
            allowed = ", ".join(sorted(error.schema.get("properties", {})))
            message += f" (allowed: {allowed})"
        elif error.validator == "not" and error.schema is schema["properties"]["experiment"]:
            message = f"{error.instance!r} is reserved (results/{error.instance}/ holds other outputs)"
        raise ConfigError(f"{where}: {message}; fix config.yaml (schema: src/ML/benchmarking/config.schema.yaml)")
    config = copy.deepcopy(config)
    _fill_defaults(schema, config)
    return config


def expand(config: dict[str, Any]) -> list[Cell]:
    """Every recipe × task × seed cell of a validated config, in grid order; duplicates are an error.

    A grid entry in config.yaml names ``recipe``, ``suite`` and optionally ``tasks`` (a subset), ``seeds`` and
    ``args``. Each cell becomes one call of ``ML task=<recipe> <task> <arguments> seed=<s> experiment=<exp>
    results=<root> threads=<n>`` writing ``<root>/<exp>/runs/<recipe>/<env>/<task>/<seed>/``; its arguments
    are, later ones winning: the protocol's (all tasks, the difficulty's, the task's), the suite's ``args``
    and ``task_args``, config.yaml's ``args``, the grid entry's ``args`` — one ``key=value`` per key, so
    ``snakemake -n -p`` shows exactly what a cell runs.
    """
    cells: dict[tuple[str, str, str, str], Cell] = {}
    common = format_args(config.get("args"))
    for i, entry in enumerate(config["grid"]):
        try:
            suite = load_suite(entry["suite"])
        except ConfigError as e:
            raise ConfigError(f"grid[{i}].suite: {e}") from None
        tasks = entry.get("tasks") or list(suite.tasks)
        unknown = [t for t in tasks if t not in suite.tasks]
        if unknown:
            raise ConfigError(
                f"grid[{i}].tasks: {', '.join(unknown)} not in suite {suite.name} ({', '.join(suite.tasks)}); "
                f"fix the name or add it to {suite.path}"
            )
        own = format_args(entry.get("args"))
        for task in tasks:
            args = merge_args(suite.cell_args(task), common, own)
            for seed in entry.get("seeds") or config["seeds"]:
                cell = Cell(entry["recipe"], suite.name, suite.env, task, int(seed), args)
                if cell.key in cells:
                    raise ConfigError(
                        f"grid[{i}]: cell {'/'.join(cell.key)} appears twice; "
                        "give the entries different recipes or tasks"
                    )
                cells[cell.key] = cell
    return list(cells.values())


def load_config(path: str | Path, schema_path: str | Path = SCHEMA) -> dict[str, Any]:
    try:
        config = yaml.safe_load(Path(path).read_text()) or {}
    except OSError as e:
        raise ConfigError(f"cannot read {path}: {e.strerror}") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path} is not valid YAML: {str(e).splitlines()[0]}") from None
    return validate(config, schema_path)
