"""Nothing silently ignored: a part the run sets that its agent does not build is refused, in one line.

A part is an Uppercase config key with its lowercase arguments (``Scheduler`` and ``scheduler``). The engine
builds ``Agent``, ``Env``, ``Dataset`` and ``TestDataset`` itself; every other part is the agent's to build,
and each agent says which ones it does (``BaseAgent.reads``). A part counts as set when it or its arguments
differ from ``_defaults.yaml``: ``ML task=drqv2_states Model=CNN`` is refused (DrQ-v2 builds its own actor
and critic), ``Model: MLP`` left at its default is not. An agent argument (``agent.*``) its constructor does not
take is refused the same way, naming the agents that take it.

This is the agent's share of the entry's split (``ML.claims``): ``agent_claims`` is the keys an agent reads, and
``check`` runs there and again when the agent is built (``ML.checkpoints.build_agent``), which is where an
agent the task chooses (by its action space) is first known.
"""

from __future__ import annotations

import inspect
from typing import Any

from ML.agents.base import AgentSettings
from ML.errors import UserError
from ML.hyperparams import resolve
from ML.hyperparams.names import BUILTINS
from ML.settings import defaults as _defaults

ENGINE_PARTS = frozenset({"Agent", "Env", "Dataset", "TestDataset"})  # built by the engine, for every agent


def agent_parts() -> list[str]:
    """The parts an agent may build: every Uppercase key of ``_defaults.yaml`` but the engine's own."""
    return sorted(k for k in _defaults() if k[:1].isupper() and k not in ENGINE_PARTS)


def set_parts(config: Any) -> list[str]:
    """The agent parts this config sets: a value, or arguments, other than the defaults'."""
    defaults = _defaults()
    return [k for k in agent_parts()
            if config.get(k) != defaults[k] or (config.get(k.lower()) or {}) != (defaults.get(k.lower()) or {})]


def _agents() -> list[str]:
    return sorted({spec.rpartition(":")[2] for spec in BUILTINS.values() if spec.startswith("ML.agents.")})


def _readers(part: str) -> list[str]:
    """The built-in agents that build ``part``."""
    return [name for name in _agents() if part in (resolve(name, "Agent").reads or ())]


def agent_claims(agent: type) -> frozenset[str] | None:
    """The top-level keys an agent class reads: ``Agent``/``agent``, each part it builds with the part's
    arguments (and ``lr`` with ``Optim``), and its ``uses``; None for an agent that does not declare ``reads``."""
    from ML.blocks.network import NetworkSettings

    reads = getattr(agent, "reads", None)
    if reads is None:
        return None
    parts = frozenset().union(*(NetworkSettings.part_keys(p) for p in reads))
    return frozenset({"Agent", "agent"}) | parts | frozenset(getattr(agent, "uses", ()))


def agents() -> list[str]:
    """The names of the built-in agents."""
    return _agents()


def _takes(agent: type, key: str) -> bool:
    params = inspect.signature(agent).parameters
    return key in params or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


def check(agent: Any, config: Any) -> None:
    """UserError (one line) naming the first agent argument ``agent`` (a class or its name) does not take, or
    part the config sets that it does not build, and the agents that would; nothing for an agent that does not
    declare ``reads``."""
    target = resolve(agent, "Agent") if isinstance(agent, str) else agent
    reads = getattr(target, "reads", None) if inspect.isclass(target) else None
    if reads is None:
        return
    for key in AgentSettings.from_config(config).agent or {}:
        if key not in ("spec", "settings") and not _takes(target, key):
            takers = ", ".join(n for n in _agents() if _takes(resolve(n, "Agent"), key)) or "no built-in agent"
            raise UserError(f"agent.{key}: {target.__name__} takes no {key}; it is an argument of {takers}. "
                            f"Drop agent.{key} or pick another task=/Agent=")
    for part in set_parts(config):
        if part not in reads:
            name = target.__name__
            readers = ", ".join(_readers(part)) or "no built-in agent"
            builds = ", ".join(sorted(reads)) or "none"
            given = f"{part}={config.get(part)}" if config.get(part) != _defaults()[part] else f"{part.lower()}.*"
            raise UserError(f"{given} would be ignored: {name} does not build {part} (it builds: "
                            f"{builds}); {part} is built by {readers}. Drop {part}/{part.lower()}.* or pick "
                            "another task=/Agent=")
