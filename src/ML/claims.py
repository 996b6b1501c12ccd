"""The entry's split of the resolved config: every key a run sets is read by some part of this task, or refused.

A key is *set* when its value differs from ``_defaults.yaml`` (or ``_defaults.yaml`` lacks it: a ``+key``). The
parts of a task are the run's own (``RunSettings``, ``AccelSettings``, ``TrackingSettings``, ``AgentSettings``),
its driver's (``ML.drivers.settings.DRIVERS``: supervised for a Dataset, interactive, on-policy or together for
an Env) and its agent's (``ML.agents.reads``: the parts it builds and its ``uses``). A set key none of them read
is refused in one line naming it and the parts that would read it, before anything is built or written:
``ML task=classify offline=true`` (offline is the interactive driver's), ``ML task=dqn norm=true`` (a dataset's).

Where the agent is left to the task (``Agent`` unset on an Env: DQN or DrQ-v2 by the action space), the agent's
keys are checked once it is chosen (``ML.checkpoints.build_agent``); an agent that does not declare ``reads``
(your own) may read any key no driver owns.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ML.accelerate import AccelSettings
from ML.agents import reads
from ML.agents.base import AgentSettings
from ML.blocks.gan import DiscriminatorSettings
from ML.blocks.network import NetworkSettings
from ML.drivers import driver_kind
from ML.drivers.settings import DRIVERS
from ML.errors import UserError
from ML.hyperparams import resolve
from ML.runsettings import RunSettings
from ML.settings import Settings, defaults
from ML.tracking import TrackingSettings

__all__ = ["ALWAYS", "check", "parts", "readers", "set_keys"]

#: the settings every run reads, whatever its task
ALWAYS: tuple[type[Settings], ...] = (RunSettings, AccelSettings, TrackingSettings, AgentSettings)
#: the agent parts' settings (``Agent`` left to the task: any of them may be read)
AGENT_PARTS: tuple[type[Settings], ...] = (NetworkSettings, DiscriminatorSettings)


def set_keys(config: Mapping[str, Any]) -> list[str]:
    """The top-level keys ``config`` sets: its values other than ``_defaults.yaml``'s, and keys it adds."""
    base = defaults()
    return [k for k, v in config.items() if k not in base or _differs(v, base[k])]


def _differs(value: Any, default: Any) -> bool:
    if isinstance(default, dict) or isinstance(value, dict):
        return dict(value or {}) != dict(default or {})
    try:
        return bool(value != default)
    except (ValueError, RuntimeError):  # an object given in code that compares elementwise (an array)
        return True


def _agent(config: Mapping[str, Any]) -> type | None:
    """The agent class, when the config decides it before the task is built (``Agent``, or a classifier for
    a labelled dataset); None when the task's action space will."""
    if config.get("Agent") is not None:
        target = resolve(config["Agent"], "Agent")
        return target if isinstance(target, type) else None
    if config.get("Dataset") is not None and not config.get("generate"):
        classifier: type = resolve("ClassifierAgent", "Agent")
        return classifier
    return None


def _keys(classes: tuple[type[Settings], ...]) -> frozenset[str]:
    return frozenset().union(*(c.claims() for c in classes))


def parts(config: Mapping[str, Any]) -> dict[str, frozenset[str]]:
    """This task's parts, each with the keys it reads: the run's, the driver's, the agent's."""
    out = {"the run": _keys(ALWAYS)}
    kind = driver_kind(config)
    if kind is not None:
        out[f"the {kind} driver"] = _keys(DRIVERS[kind])
    agent = _agent(config)
    claims = reads.agent_claims(agent) if agent is not None else None
    if claims is not None and agent is not None:
        out[agent.__name__] = claims
    elif agent is None and config.get("Agent") is None:  # chosen by the action space: checked when built
        out["the task's agent"] = _keys(AGENT_PARTS) | frozenset({"batch_size"})
    else:  # an agent that does not declare reads: anything no driver owns
        owned = _keys(tuple(c for classes in DRIVERS.values() for c in classes))
        out[getattr(agent, "__name__", str(config.get("Agent")))] = frozenset(config) - owned
    return out


def readers(key: str) -> list[str]:
    """Every part that reads ``key``: drivers, and built-in agents."""
    found = [f"the {kind} driver" for kind, classes in DRIVERS.items() if key in _keys(classes)]
    for name in reads.agents():
        claims = reads.agent_claims(resolve(name, "Agent"))
        if claims is not None and key in claims:
            found.append(name)
    return found


def check(config: Mapping[str, Any]) -> None:
    """UserError (one line) for the first key ``config`` sets that no part of its task reads; the agent's own
    refusals first (``ML.agents.reads.check``: an argument it does not take, a part it does not build)."""
    if driver_kind(config) == "across":  # each task's spec is checked as that task's own run
        from ML.hyperparams.together import resolved

        for sub in resolved(config):
            check(sub)
    agent = _agent(config)
    if agent is not None:
        reads.check(agent, config)
    found = parts(config)
    claimed = frozenset().union(*found.values())
    for key in set_keys(config):
        if key in claimed:
            continue
        value = config[key]
        name = f"{key}.*" if isinstance(value, dict) else key
        given = name if isinstance(value, dict) else f"{key}={str(value).lower() if isinstance(value, bool) else value}"
        who = ", ".join(readers(key)) or "no part of the engine"
        task = " + ".join(n for n in found if n != "the run")
        raise UserError(f"{given} would be ignored: no part of this task ({task}) reads {key}; it is read by "
                        f"{who}. Drop {name} or pick another task=/Env=/Dataset=/Agent=")
