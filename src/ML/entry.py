"""The way into a run, above the loop: resolve the config, then train in this process or on N processes.

``ML.launch(...)`` and the ``ML`` command come here; ``start`` hands a ``world_size > 1`` run to the
data-parallel launcher (``ML.distributed``), whose workers each call ``ML.run.train`` directly.
"""

from __future__ import annotations

import sys
from typing import Any

from ML import claims, distributed, ranks, run, threads
from ML.accelerate import AccelSettings
from ML.hyperparams import Config, resolve_config
from ML.hyperparams.paths import check_parts
from ML.runinfo import command_line


def _script_argv() -> list[str]:
    """``python Run.py key=value``: the script's arguments, unless running inside a notebook or REPL."""
    if "ipykernel" in sys.modules or hasattr(sys, "ps1"):
        return []
    return sys.argv[1:]


def start(config: Config, command: list[str]) -> Any:
    """Train ``config`` and return the agent: on ``world_size`` processes when that is > 1. Every part's name
    is checked for its slot's kind first, and every key the run sets for a part of this task that reads it
    (``ML.claims``), before anything is built."""
    check_parts(config)
    claims.check(config)
    if ranks.world_size(AccelSettings.from_config(config)) > 1:
        return distributed.launch(config, command)
    with threads.restored():  # the caller's thread count again afterwards (a notebook's); not in a forked
        return run.train(config, command)  # rank, where a new OpenMP team after the parent's can deadlock


def launch(*args: Any, **kwargs: Any) -> Any:
    """Train and return the agent. Priority: command line > code (these arguments) > recipe."""
    return start(resolve_config(args, kwargs, _script_argv()), command_line())
