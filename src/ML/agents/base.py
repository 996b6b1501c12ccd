"""The agent contract the drivers rely on (``Agent``, ``DatasetAgent``) and the base class agents extend.

An agent is built as ``Agent(spec=TaskSpec, settings=Bundle, **agent_args)``: the typed settings it may read,
never the whole config (``ML.checkpoints.build_agent`` holds that, reads the bundle from it and checks the
agent's claims). agent.pt keeps the config and the agent's state (``ML.checkpoints.agent_state``: modules,
optimisers, generators, counters) and rebuilds it the same way.
ARCHITECTURE.md shows where agents sit between the drivers and the blocks.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np
from torch import nn

from ML.accelerate import AccelSettings
from ML.blocks.gan import DiscriminatorSettings
from ML.blocks.network import NetworkSettings
from ML.envs.base import EnvSettings
from ML.envs.datasets import DatasetSettings
from ML.errors import UserError
from ML.runsettings import RunSettings
from ML.settings import Settings


@dataclasses.dataclass(frozen=True)
class AgentSettings(Settings):
    """Which agent learns, and its constructor's arguments (its signature is its settings: an argument it does
    not take is refused, ``ML.agents.reads``)."""

    Agent: Any                  # DQNAgent, DrQV2Agent, ClassifierAgent, ... (null: chosen by the task)
    agent: Mapping[str, Any]    # the agent's constructor arguments


class TaskAgent(Protocol):
    """One task's agent in a together run, built as that task's own recipe builds it (``ML.checkpoints``)."""

    def target(self, spec: Any) -> Any:
        """The task's agent class (or its name): its recipe's ``Agent``, else the one its action space picks."""

    def build(self, spec: Any, shared: Mapping[str, nn.Module]) -> Any:
        """The task's agent, with each part in ``shared`` (``Eyes``, ``Trunk``) the given module itself."""


@dataclasses.dataclass(frozen=True)
class Together:
    """What an agent of several tasks (``together:``, ``ML.agents.together``) is given besides its own settings."""

    share: tuple[str, ...]          # the parts built once and handed to every task's agent
    share_width: int                # with a shared Trunk: the features each task projects its inputs to
    tasks: tuple[TaskAgent, ...]    # each task's agent, to build around the shared parts


@dataclasses.dataclass(frozen=True)
class Bundle:
    """The settings an agent is built with (``settings=``): typed views of the run's config, read once by
    ``ML.checkpoints.build_agent``. Which keys a run may set for an agent is its ``reads``/``uses``
    (``ML.agents.reads``); the bundle is what those keys arrive as."""

    run: RunSettings                        # seed, train_steps, ...
    network: NetworkSettings                # Eyes, Pool, Trunk, Model, Aug, Optim with lr, Scheduler
    accel: AccelSettings                    # the device (``ML.blocks.network.config_device``)
    batch_size: int                         # samples per update (``BaseAgent.uses``)
    env: EnvSettings                        # Env, env (e.g. ``env.num_envs``)
    dataset: DatasetSettings                # Dataset, dataset, norm, ...
    discriminator: DiscriminatorSettings    # a GAN's critic
    extra: Mapping[str, Any]                # the run's own keys (``+my_key=1``) no part of the engine reads
    together: Together | None               # a run of several tasks (``together:``); else None


@runtime_checkable
class Agent(Protocol):
    """What a driver calls on every agent. Arguments before ``/`` are passed by position."""

    def act(self, obs: Any, step: int, /, eval_mode: bool = False) -> Any:
        """The action for one observation (no batch axis); greedy when ``eval_mode``."""

    def update(self, experience: Any, step: int, /) -> dict[str, float]:
        """One training step on the driver's experience (a replay or a batch); its losses, maybe none."""

    def describe(self) -> dict[str, Any]:
        """Settings the agent chose at run time that run.json records beside the task's (under ``env``)."""

    def train(self, mode: bool = True) -> Any: ...

    def eval(self) -> Any: ...


@runtime_checkable
class DatasetAgent(Agent, Protocol):
    """An agent the supervised driver can evaluate on a held-out dataset."""

    def evaluate(self, dataset: Any, step: int = 0, out_dir: Path | None = None, /) -> dict[str, float]:
        """Metrics on ``dataset``, ``score`` among them; ``out_dir``: where to save artefacts (samples)."""


def action_bounds(spec: Any, agent: str) -> tuple[float, float]:
    """A continuous task's action range (``[-1, 1]`` where the spec gives none); an agent that squashes its
    actions into it needs both ends finite."""
    low = -1.0 if spec.action_low is None else float(spec.action_low)
    high = 1.0 if spec.action_high is None else float(spec.action_high)
    if not (np.isfinite(low) and np.isfinite(high) and high > low):
        raise UserError(f"{agent} needs finite action bounds, {spec.task} has [{low}, {high}]")
    return low, high


class Transient:
    """A value for this process only, pickled as empty (``value`` is None after loading): e.g. the
    DistributedDataParallel or compiled wrapper of a network, which must not travel in agent.pt."""

    def __init__(self, value: Any = None):
        self.value = value

    def __reduce__(self) -> tuple[type, tuple[()]]:
        return Transient, ()


class BaseAgent(nn.Module):
    """The ``nn.Module`` agents extend: defaults for the optional parts of ``Agent``.

    ``reads``: the parts (Uppercase config keys such as ``Eyes``, ``Model``, ``Scheduler``) the agent builds
    from its ``settings.network``. A part a run sets that its agent does not read is refused
    (``ML.agents.reads``) rather than silently ignored; ``None`` (an agent that does not say) is not checked.
    ``uses``: the other top-level keys it reads that no driver claims for it (``batch_size``: samples per
    update, PPO's minibatch).
    """

    reads: ClassVar[frozenset[str] | None] = None
    uses: ClassVar[frozenset[str]] = frozenset({"batch_size"})

    def update(self, experience: Any, step: int) -> dict[str, float]:
        return {}

    def describe(self) -> dict[str, Any]:
        return {}
