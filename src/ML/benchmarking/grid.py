"""The benchmark grid: validate config.yaml against its schema, read suite files, expand recipe × task × seed."""

from __future__ import annotations

import copy
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from ML import layout
from ML.benchmarking.together import task_name
from ML.errors import UserError
from ML.hyperparams.recipes import load as load_recipe
from ML.hyperparams.suites import (  # noqa: F401  (the pipeline's names for the engine's suite reading)
    SUITE_ARGS,
    SUITES_DIR,
    ConfigError,
    Suite,
    format_args,
    format_value,
    known_suites,
    load_suite,
)

SCHEMA = Path(__file__).with_name("config.schema.yaml")  # package data: the workflow validates with it too

@dataclass(frozen=True)
class Cell:
    recipe: str
    suite: str  # the suite file's name (classic, classify, ...)
    env: str  # the environment kind, the run directory's <suite> level (Classic, Classify, ...)
    task: str  # tasks trained together: their names joined by ``+`` (the run directory's task level)
    seed: int
    args: tuple[str, ...] = field(default=())
    together: tuple[str, ...] = field(default=())  # the tasks one agent trains together; () for one task

    @property
    def tasks(self) -> tuple[str, ...]:
        """The tasks this cell trains (one, or those trained together)."""
        return self.together or (self.task,)

    @property
    def key(self) -> tuple[str, str, str, str]:
        return self.recipe, self.env, self.task, str(self.seed)

    def run_dir(self, results: str | Path, experiment: str) -> Path:
        return layout.run_dir(results, experiment, self.recipe, self.env, self.task, self.seed)

    def argv(self, experiment: str, results: str | Path, threads: int) -> list[str]:
        return [
            f"task={self.recipe}",
            *(a.format(task=f"[{','.join(self.together)}]" if self.together else self.task)
              for a in SUITE_ARGS[self.env]),
            f"seed={self.seed}",
            f"experiment={experiment}",
            f"results={results}",
            f"threads={threads}",
            "progress=false",
            *self.args,
        ]

    def shell_args(self, experiment: str, results: str | Path, threads: int) -> str:
        return " ".join(shlex.quote(a) for a in self.argv(experiment, results, threads))


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


# what ML trains together (ML.drivers.together, docs/together.md): vector observations and discrete actions,
# the DQN agent without its dueling head; checked here so a grid entry fails before any cell runs
TOGETHER_ENVS = ("Classic",)
TOGETHER_AGENTS = ("DQNAgent",)


def _together_args(i: int, entry: dict[str, Any], suite: Suite) -> list[str]:
    """The suite arguments of a ``together`` entry's cell, or ConfigError saying why it cannot train together."""
    tasks = entry["together"]
    where = f"grid[{i}].together"
    unknown = [t for t in tasks if t not in suite.tasks]
    if unknown:
        raise ConfigError(f"{where}: {', '.join(unknown)} not in suite {suite.name} ({', '.join(suite.tasks)}); "
                          f"fix the name or add it to {suite.path}")
    if suite.env not in TOGETHER_ENVS:
        raise ConfigError(f"{where}: suite {suite.name} is {suite.env}; tasks train together only in "
                          f"{', '.join(TOGETHER_ENVS)} suites (vector observations, discrete actions)")
    try:
        recipe = load_recipe(entry["recipe"])
    except UserError as e:
        raise ConfigError(f"grid[{i}].recipe: {e}") from None
    agent = str(recipe.get("Agent") or "").rsplit(".", 1)[-1]
    if agent not in TOGETHER_AGENTS or (recipe.get("agent") or {}).get("dueling"):
        what = "a dueling DQNAgent" if agent in TOGETHER_AGENTS else f"Agent {agent or 'chosen by the task'}"
        raise ConfigError(f"{where}: recipe {entry['recipe']} has {what}; only {', '.join(TOGETHER_AGENTS)} "
                          "(not dueling) trains tasks together: name such a recipe (e.g. dqn) or drop together")
    each = {task: suite.cell_args(task) for task in tasks}
    if len({tuple(a) for a in each.values()}) > 1:
        a, b = tasks[0], next(t for t in tasks if each[t] != each[tasks[0]])
        raise ConfigError(f"{where}: the suite gives {a} and {b} different arguments ({' '.join(each[a]) or 'none'} "
                          f"vs {' '.join(each[b]) or 'none'}); one run takes one setting: set it in the entry's args")
    return each[tasks[0]]


def expand(config: dict[str, Any]) -> list[Cell]:
    """Every recipe × task × seed cell of a validated config, in grid order; duplicates are an error.

    A grid entry in config.yaml names ``recipe``, ``suite`` and optionally ``tasks`` (a subset), ``together``
    (tasks one agent trains together: one more cell per seed, task ``A+B``, trained with ``env.task=[A,B]``;
    without ``tasks`` the entry trains only that cell), ``seeds`` and ``args``. Each cell becomes one call of
    ``ML task=<recipe> <task> <arguments> seed=<s> experiment=<exp> results=<root> threads=<n>`` writing
    ``<root>/<exp>/runs/<recipe>/<env>/<task>/<seed>/``; its arguments are, later ones winning: the
    protocol's (all tasks, the difficulty's, the task's), the suite's ``args`` and ``task_args``, config.yaml's
    ``args``, the grid entry's ``args`` — one ``key=value`` per key, so ``snakemake -n -p`` shows exactly what
    a cell runs.
    """
    cells: dict[tuple[str, str, str, str], Cell] = {}
    common = format_args(config.get("args"))
    for i, entry in enumerate(config["grid"]):
        try:
            suite = load_suite(entry["suite"])
        except ConfigError as e:
            raise ConfigError(f"grid[{i}].suite: {e}") from None
        together = list(entry.get("together") or ())
        tasks = entry.get("tasks") or ([] if together else list(suite.tasks))
        unknown = [t for t in tasks if t not in suite.tasks]
        if unknown:
            raise ConfigError(
                f"grid[{i}].tasks: {', '.join(unknown)} not in suite {suite.name} ({', '.join(suite.tasks)}); "
                f"fix the name or add it to {suite.path}"
            )
        own = format_args(entry.get("args"))
        units = [(task, (), suite.cell_args(task)) for task in tasks]
        if together:
            units.append((task_name(together), tuple(together), _together_args(i, entry, suite)))
        for task, group, suite_args in units:
            args = merge_args(suite_args, common, own)
            for seed in entry.get("seeds") or config["seeds"]:
                cell = Cell(entry["recipe"], suite.name, suite.env, task, int(seed), args, group)
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
