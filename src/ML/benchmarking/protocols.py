"""Published protocols as recipe arguments: what a suite's cells must run to be comparable with a paper."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ML.errors import UserError

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
        return {**self.args, **(self.difficulties.get(difficulty) or {}), **self.tasks.get(task, {})}


def known() -> list[str]:
    return sorted(p.stem for p in PROTOCOLS_DIR.glob("*.yaml"))


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ProtocolError(f"{where} must be a mapping of key: value, not {type(value).__name__}")
    return dict(value)


@functools.cache
def load(name: str) -> Protocol:
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
        raise ProtocolError(f"unknown protocol {name!r}: expected {path} (known protocols: {', '.join(known())})")
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
