"""What ``ML --help`` says: the recipes, suites and tasks there are, the main settings, and one recipe's settings.

Everything listed is read from where it is defined (the recipe files' first comment line, the suite files,
``_defaults.yaml``'s comments, the parts' signatures), so the help cannot drift from what runs.
"""

from __future__ import annotations

import importlib.metadata
import inspect
from pathlib import Path
from typing import Any

import yaml

from ML.hyperparams import recipes, resolve, resolve_config, schema

MANUAL = "docs/index.md in the repository (as a site: pip install -e '.[docs]' && mkdocs serve)"
USAGE = """usage: ML [-m] key=value [+new.key=value ...]
       ML --help task=NAME       one recipe's settings, their defaults and types
       ML --version"""
EXAMPLES = """examples:
  ML task=classify                                 an MLP on Digits (offline, seconds)
  ML task=classify Eyes=CNN +eyes.depth=5          a 5-layer CNN body, then the MLP head
  ML task=dqn env.task=Acrobot-v1 seed=1           DQN on any gymnasium task with discrete actions
  ML -m task=dqn seed=0,1,2                        sweep: one run per comma-separated value
  ML task=drqv2 env.task=cheetah_run device=auto   DrQ-v2 from pixels (a GPU job)"""
#: the settings ``ML --help`` explains (every one is in _defaults.yaml with its comment)
MAIN = ("task", "experiment", "seed", "train_steps", "evaluate_per_steps", "evaluate_episodes", "batch_size",
        "lr", "threads", "device", "results", "save", "load", "overwrite", "Env", "Dataset", "Agent", "Eyes",
        "Model", "Optim", "debug")
# engine-filled constructor arguments: not settings a user gives
_ENGINE_ARGS = {"self", "spec", "settings", "in_shape", "out_shape", "in_features", "out_features", "in_channels",
                "out_channels", "in_dim", "out_dim", "image_shape", "params", "seed", "evaluation", "root",
                "download", "split_seed", "test_fraction", "num_classes"}


def version() -> str:
    try:
        return importlib.metadata.version("unifiedml")
    except importlib.metadata.PackageNotFoundError:  # a source tree on PYTHONPATH, not installed
        import ML

        return ML.__version__


def _first_comment(path: Path) -> str:
    for line in path.read_text().splitlines():
        if line.startswith("#"):
            return line.lstrip("# ").strip()
    return ""


def _recipe_lines() -> list[str]:
    paths = sorted((p for p in recipes.BUILTIN.glob("*.yaml") if not p.stem.startswith("_")),
                   key=lambda p: p.stem.lower())
    return [f"  {p.stem:21s}{_short(_first_comment(p))}" for p in paths]


def _short(text: str, width: int = 84) -> str:
    return text if len(text) <= width else text[:width - 3].rstrip() + "..."


def _suite_lines() -> list[str]:
    out = []
    for path in sorted((recipes.BUILTIN / "suites").glob("*.yaml")):
        data = yaml.safe_load(path.read_text()) or {}
        tasks = data.get("tasks") or []
        shown = ", ".join(tasks[:4]) + (", ..." if len(tasks) > 4 else "")
        protocol = f", protocol {data['protocol']}" if data.get("protocol") else ""
        out.append(f"  {path.stem:11s}{data.get('env')}, {len(tasks)} tasks{protocol}: {shown}")
    return out


def _defaults_comments() -> dict[str, str]:
    """``_defaults.yaml``'s ``key: value  # comment`` lines as {key: comment}."""
    out = {}
    for line in (recipes.BUILTIN / "_defaults.yaml").read_text().splitlines():
        key, sep, rest = line.partition(":")
        if sep and not line.startswith((" ", "#")) and "#" in rest:
            out[key] = rest.split("#", 1)[1].strip()
    return out


def overview() -> str:
    """``ML --help``."""
    comments = _defaults_comments()
    settings = [f"  {key:19s}{comments.get(key, '')}" for key in MAIN]
    return "\n".join([
        USAGE, "",
        "Trains one task into results/<experiment>/runs/<recipe>/<suite>/<task>/<seed>/ (eval.csv, train.csv,",
        "agent.pt, run.json). Values parse as YAML; Uppercase=... names a class (built-in, MyFile.attr, module path).",
        "A mistake is one line and exit 2; debug=true also prints the traceback behind it.", "",
        "recipes (task=NAME; a NAME.yaml in the working directory or ./recipes/ comes first):", *_recipe_lines(), "",
        "tasks:",
        "  Env=Classic env.task=ID           any gymnasium id (CartPole-v1, Acrobot-v1, Pendulum-v1, ...)",
        "  Env=Atari env.game=NAME           any ALE game (pong, breakout, mspacman, ...: suite atari57 lists 57)",
        "  Env=DMC env.task=DOMAIN_TASK      DeepMind Control (cheetah_run, walker_walk, ...: suites dmc_*)",
        "  Dataset=NAME                      Digits (offline), MNIST, FashionMNIST, CIFAR10, ImageFolder, or yours",
        "",
        "suites (the pipeline's config.yaml grid: suite: NAME):", *_suite_lines(), "",
        "main settings (every one: src/ML/recipes/_defaults.yaml):", *settings, "",
        EXAMPLES, "",
        f"the manual: {MANUAL}",
    ])


def _flat(tree: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    out = []
    for key, value in tree.items():
        if isinstance(value, dict) and value:
            out += _flat(value, f"{prefix}{key}.")
        else:
            out.append((f"{prefix}{key}", value))
    return out


def _type(key: str, value: Any, annotations: dict[str, str]) -> str:
    if key in annotations:
        return annotations[key]
    top = key.split(".")[0]
    kind = schema.TYPES.get(top)
    if kind is schema.Part:
        return "a class: a built-in name, MyFile.attr or a module path"
    if kind is not None and "." not in key:
        return kind.description
    if kind is not None and kind.fields and key.split(".", 1)[1] in kind.fields:
        return kind.fields[key.split(".", 1)[1]].description
    return type(value).__name__ if value is not None else "any"


def _signature(part: str, target: Any) -> list[tuple[str, Any, str]]:
    """A part's own constructor arguments: (``section.name``, default, annotation)."""
    try:
        params = inspect.signature(resolve(target, part)).parameters.values()
    except (TypeError, ValueError, Exception):  # noqa: BLE001 -- a part that cannot be resolved here: no arguments shown
        return []
    section = part.lower()
    return [(f"{section}.{p.name}", p.default, _annotation(p.annotation))
            for p in params if p.name not in _ENGINE_ARGS | {"lr"} and p.default is not p.empty
            and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]


def _annotation(annotation: Any) -> str:
    if annotation is inspect.Parameter.empty:
        return ""
    return annotation if isinstance(annotation, str) else getattr(annotation, "__name__", str(annotation))


def _show(value: Any) -> str:
    return schema._show(value) if not isinstance(value, str) or value else "''"


def recipe(argv: list[str]) -> str:
    """``ML --help task=NAME ...``: the recipe's settings (as resolved with the rest of the command line),
    then its parts' other constructor arguments with their defaults."""
    config = resolve_config(argv=argv)
    name = str(config.task)
    path = recipes.find(name)
    own = recipes.load(name)
    own.pop("by_task", None)
    own.pop("by_action_space", None)
    rows, annotations, seen = [], {}, set()
    for part, target in config.items():
        if part[:1].isupper() and isinstance(target, str):
            for key, default, annotation in _signature(part, target):
                annotations[key] = annotation or type(default).__name__
    for key, _ in _flat(own):
        if key.islower() and key.capitalize() in config and "." not in key:
            continue  # an empty argument section (env: {}): its arguments are listed below
        value: Any = config
        for k in key.split("."):
            value = value.get(k) if isinstance(value, dict) else None
        rows.append((key, _show(value), _type(key, value, annotations)))
        seen.add(key)
    extra = []
    for part, target in config.items():
        if part[:1].isupper() and isinstance(target, str) and part in own:
            extra += [(k, _show(d), annotations[k]) for k, d, _ in _signature(part, target) if k not in seen]
    width = max(len(k) for k, _, _ in rows + extra) + 2
    lines = [f"ML task={name}: {_first_comment(path)}", f"recipe file: {path}", "",
             f"{'setting':{width}s}{'default':24s}type"]
    lines += [f"{k:{width}s}{v:24s}{t}" for k, v, t in rows]
    if extra:
        lines += ["", "the parts' other arguments (their own defaults):"]
        lines += [f"{k:{width}s}{v:24s}{t}" for k, v, t in extra]
    lines += ["", "Any other setting keeps its default (ML --help lists the main ones). Set one with key=value."]
    return "\n".join(lines)


def no_arguments() -> str:
    return ("ML: nothing to train yet. Try `ML task=classify` (Digits, seconds) or `ML task=dqn` (CartPole);\n"
            "`ML --help` lists the recipes, tasks and settings, `ML --help task=NAME` one recipe's settings.")
