"""agent.pt: the agent's weights and optimiser states, and the ``RunState`` to resume from.

The payload holds only tensors, dicts, lists, numbers and strings, so it loads with
``torch.load(weights_only=True)``: reading a checkpoint runs no code from it. The agent is rebuilt from the
agent class, config and task spec the checkpoint names (importing the classes they name, as the recipe
that trained it did), then its state is loaded into it. No dataset is ever stored.
"""

from __future__ import annotations

import contextlib
import errno
import inspect
import os
import pickle
import random
import shutil
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ML import stops
from ML.accelerate import AccelSettings
from ML.agents import reads
from ML.agents.base import AgentSettings, Bundle, Together
from ML.blocks.gan import DiscriminatorSettings
from ML.blocks.network import NetworkSettings
from ML.drivers.settings import AcrossSettings
from ML.envs.base import EnvSettings, TaskSpec
from ML.envs.datasets import DatasetSettings
from ML.errors import UserError
from ML.fileio import atomic_write
from ML.hyperparams import Config, instantiate, resolve
from ML.hyperparams.names import untrusted
from ML.runinfo import jsonable
from ML.runsettings import RunSettings
from ML.settings import defaults

FORMAT = "unifiedml-agent"
VERSION = 2
#: agent attributes that count progress (a schedule's position) and so travel with the weights
COUNTERS = ("updates",)


@dataclass
class RunState:
    """What a checkpoint carries besides the agent: where the loop stands, and what continues it exactly.

    A new field needs a default, so that checkpoints written before it still load.
    """

    step: int = 0
    frame: int = 0
    time: float = 0.0                  # seconds of training so far
    finished: bool = False             # the run ended (a finished run is not resumed)
    config_hash: str = ""              # the config that wrote it (a resume needs the same one)
    evaluated: int = -1                # the last step whose eval.csv row is written
    window: dict[str, list[float]] = field(default_factory=dict)  # metrics since the last train.csv row
    window_step: int = 0               # the step the window started at
    logs: dict[str, Any] = field(default_factory=dict)  # per log file: (rows written, header) at the checkpoint
    driver: dict[str, Any] = field(default_factory=dict)  # the driver's state (batch order, episode, replay)
    rng: dict[str, Any] = field(default_factory=dict)  # python / numpy / torch global generators

    def to_payload(self) -> dict[str, Any]:
        payload: dict[str, Any] = encode(asdict(self))
        return payload

    @classmethod
    def from_payload(cls, data: dict[str, Any]) -> RunState:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in decode(data).items() if k in known})


# ---------------------------------------------------------------- payload values


def encode(value: Any) -> Any:
    """A value as weights-only data: numpy arrays become tagged tensors, numpy scalars Python numbers."""
    if isinstance(value, dict):
        return {k: encode(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(encode(v) for v in value)
    if isinstance(value, np.ndarray):
        return {"__ndarray__": torch.from_numpy(np.array(value, copy=True)), "dtype": str(value.dtype)}
    if isinstance(value, np.generic):
        return value.item()
    return value


def decode(value: Any) -> Any:
    if isinstance(value, dict):
        if "__ndarray__" in value:
            return value["__ndarray__"].numpy().astype(value["dtype"], copy=False)
        return {k: decode(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(decode(v) for v in value)
    return value


def rng_states() -> dict[str, Any]:
    """The global generators: python, numpy, torch, and CUDA's once a run has used it."""
    name, keys, pos, has_gauss, gauss = np.random.get_state()
    states = {"python": random.getstate(), "numpy": [name, keys, pos, has_gauss, gauss],
              "torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():  # type: ignore[no-untyped-call]
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def restore_rng(states: dict[str, Any]) -> None:
    random.setstate(tuple(states["python"][:1]) + (tuple(states["python"][1]),) + tuple(states["python"][2:]))
    np.random.set_state(tuple(states["numpy"]))
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available() and len(states["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(states["cuda"])


# ---------------------------------------------------------------- the agent


def default_agent(spec: Any) -> str:
    """The agent when none is named (``ML Dataset=CIFAR10 Model=Run.model``): by the kind of task —
    a classifier for labelled data, DQN for discrete actions, DrQ-v2 for continuous ones; tasks of a
    ``together:`` run, one agent each around their shared parts (``TogetherAgent``)."""
    if spec.suite == "Together":
        return "TogetherAgent"
    if spec.num_classes:
        return "ClassifierAgent"
    return "DQNAgent" if spec.discrete else "DrQV2Agent"


def build_agent(target: Any, config: Any, spec: TaskSpec) -> Any:
    """``Agent(spec=..., settings=agent_settings(config), **agent)``: how a run builds its agent, and how a
    checkpoint rebuilds it. A part the config sets that the agent does not build is refused first
    (``ML.agents.reads``), and so is an agent still written to take the whole ``config``."""
    reads.check(target, config)
    _takes_settings(target)
    args = dict(AgentSettings.from_config(config).agent or {})
    return instantiate(target, {**args, "spec": spec, "settings": agent_settings(config)}, label="Agent")


def _takes_settings(target: Any) -> None:
    """UserError (one line) for an agent whose constructor takes ``config`` (the contract before typed settings)."""
    agent = resolve(target, "Agent") if isinstance(target, str) else target
    with contextlib.suppress(TypeError, ValueError):  # no signature to read: instantiate reports what it finds
        params = inspect.signature(agent).parameters
        if "config" in params and "settings" not in params:
            name = getattr(agent, "__name__", str(target))
            raise UserError(f"{name}.__init__ takes config, but agents now take settings (ML.agents.base.Bundle: "
                            "settings.run.seed, settings.network.lr, settings.batch_size, ...); rename the "
                            "argument and read those, as docs/agents.md describes")


def agent_settings(config: Any) -> Bundle:
    """The typed settings an agent reads, from the run's config (the one place that holds it)."""
    together, across = None, AcrossSettings.from_config(config)
    if across.together:
        from ML.hyperparams.together import task_configs

        together = Together(share=tuple(across.share or ()), share_width=int(across.share_width),
                            tasks=tuple(TaskConfig(sub) for sub in task_configs(config)))
    known = defaults()
    return Bundle(run=RunSettings.from_config(config), network=NetworkSettings.from_config(config),
                  accel=AccelSettings.from_config(config), batch_size=int(config["batch_size"]),
                  env=EnvSettings.from_config(config), dataset=DatasetSettings.from_config(config),
                  discriminator=DiscriminatorSettings.from_config(config),
                  extra={k: v for k, v in config.items() if k not in known}, together=together)


@dataclass(frozen=True)
class TaskConfig:
    """One task of a together run (``ML.agents.base.TaskAgent``): its own resolved config, from which its agent
    is built as its recipe builds it alone."""

    config: Config

    def target(self, spec: TaskSpec) -> Any:
        return self.config.get("Agent") or default_agent(spec)

    def build(self, spec: TaskSpec, shared: Mapping[str, nn.Module]) -> Any:
        config = Config({**self.config, **shared, **{name.lower(): {} for name in shared}})
        return build_agent(self.target(spec), config, spec)


def agent_state(agent: nn.Module) -> dict[str, Any]:
    """The agent's learned state: its modules, the optimisers/schedulers/grad scalers and generators it
    holds, and its progress counters (``COUNTERS``)."""
    objects: dict[str, Any] = {}
    counters: dict[str, int] = {}
    for name, value in _public(agent):
        if name in COUNTERS and isinstance(value, int):
            counters[name] = value
        elif isinstance(value, (np.random.Generator, torch.Generator)):
            continue  # generator_states
        elif hasattr(value, "state_dict") and hasattr(value, "load_state_dict"):
            objects[name] = value.state_dict()
        elif getattr(value, "scaler", None) is not None:  # the Accelerator's grad scaler
            objects[f"{name}.scaler"] = value.scaler.state_dict()
    return {"module": agent.state_dict(), "objects": objects, "rngs": generator_states(agent),
            "counters": counters}


def _public(agent: nn.Module) -> Iterator[tuple[str, Any]]:
    """The agent's attributes a checkpoint may hold: modules are in state_dict(), private attributes are
    rebuilt (caches, wrappers)."""
    return ((n, v) for n, v in vars(agent).items() if not n.startswith("_") and not isinstance(v, nn.Module))


def generator_states(agent: nn.Module) -> dict[str, Any]:
    """The states of the random generators the agent holds (numpy and torch)."""
    rngs: dict[str, Any] = {}
    for name, value in _public(agent):
        if isinstance(value, np.random.Generator):
            rngs[name] = value.bit_generator.state
        elif isinstance(value, torch.Generator):
            rngs[name] = value.get_state()
    return rngs


def load_generator_states(agent: nn.Module, states: dict[str, Any]) -> None:
    for name, value in states.items():
        generator = getattr(agent, name)
        if isinstance(generator, torch.Generator):
            generator.set_state(value)
        else:
            generator.bit_generator.state = value


def load_agent_state(agent: nn.Module, state: dict[str, Any], source: Path | str = "agent.pt") -> None:
    try:
        agent.load_state_dict(state["module"])
        for name, value in state["objects"].items():
            owner, _, part = name.partition(".")
            target = getattr(agent, owner)
            (getattr(target, part) if part else target).load_state_dict(value)
    except (RuntimeError, ValueError, KeyError, AttributeError, TypeError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UserError(f"checkpoint {source} does not fit this agent ({first}); load it with the settings "
                        "that trained it, or start without load=") from None
    load_generator_states(agent, state["rngs"])
    for name, value in state["counters"].items():
        setattr(agent, name, int(value))


# ---------------------------------------------------------------- files


def save(path: str | Path, agent: nn.Module, target: Any, config: Any, spec: TaskSpec, state: RunState) -> None:
    """Write atomically: a checkpoint is whole or absent, never half-written (and the temporary file of a write
    that a kill cut short is removed here)."""
    for stale in Path(path).parent.glob(f".{Path(path).name}.*.tmp"):
        stale.unlink(missing_ok=True)
    payload = {"format": FORMAT, "version": VERSION,
               "agent": {"target": jsonable(target), "config": jsonable(config), "spec": jsonable(asdict(spec)),
                         "state": agent_state(agent)},
               "run": state.to_payload()}

    def write(tmp: Path) -> None:
        try:
            torch.save(payload, tmp)
            stops.point("checkpoint")
        except RuntimeError as e:  # torch's writer reports a full disk as a RuntimeError, errno lost
            if shutil.disk_usage(tmp.parent).free >= 1 << 20:
                raise
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path)) from e

    atomic_write(path, write)


def read(path: str | Path) -> dict[str, Any]:
    """The checkpoint at ``path``; a missing, corrupt or foreign file is a one-line UserError."""
    path = Path(path)
    if path.is_dir():
        path = path / "agent.pt"
    if not path.is_file():
        raise UserError(f"no checkpoint at {path}; train with save=true first or pass load=<path to agent.pt>")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise UserError(f"checkpoint {path} holds pickled objects (an older UnifiedML, or not a UnifiedML "
                        "checkpoint): it is not loaded, since unpickling runs code; retrain it here") from None
    except (zipfile.BadZipFile, RuntimeError, EOFError, ValueError, OSError) as e:
        raise UserError(f"checkpoint {path} is corrupt or unreadable ({type(e).__name__}); delete it and retrain")\
            from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise UserError(f"{path} is not a UnifiedML checkpoint; pass the agent.pt of a run directory")
    if payload.get("version") != VERSION:
        raise UserError(f"checkpoint {path} is of format version {payload.get('version')}, this UnifiedML reads "
                        f"{VERSION}; retrain it here")
    payload["path"] = path
    return payload


def run_state(payload: dict[str, Any]) -> RunState:
    return RunState.from_payload(payload["run"])


def saved_agent(payload: dict[str, Any]) -> dict[str, Any]:
    """The checkpoint's agent record, its fields of the types ``save`` writes (a crafted file is one line)."""
    saved: Any = payload.get("agent")
    types = {"target": str, "config": dict, "spec": dict, "state": dict}
    wrong = [k for k, t in types.items() if not isinstance(saved, dict) or not isinstance(saved.get(k), t)]
    if not wrong:
        spec, known = saved["spec"], {f.name for f in fields(TaskSpec)}
        shapes = [spec.get("obs_shape"), spec.get("action_shape") or []]
        wrong = [f"spec.{k}" for k in spec if k not in known]
        wrong += [] if all(isinstance(s, list) and all(type(n) is int for n in s) for s in shapes) else ["spec shape"]
    if wrong:
        raise UserError(f"checkpoint {payload.get('path', 'agent.pt')} is malformed (agent {wrong[0]} is missing "
                        "or of the wrong type); it was not written by UnifiedML: retrain it here")
    return dict(saved)


def restore(payload: dict[str, Any], config: Any = None, spec: TaskSpec | None = None, trust: bool = False) -> Any:
    """The checkpoint's agent, rebuilt from the agent class, config and spec it names; with ``config`` and
    ``spec`` (a run resuming itself, or code that passes its own objects) from those instead.

    The checkpoint's own config is data from a file: its names pass the same slot checks as a command line's,
    and names code outside the engine's libraries (MyFile.Net, my_package.Agent) only with ``trust``."""
    saved = saved_agent(payload)
    source = payload.get("path", "agent.pt")
    guard: contextlib.AbstractContextManager[None] = contextlib.nullcontext()
    if config is None:
        config = Config(saved["config"])
        guard = contextlib.nullcontext() if trust else untrusted(f"checkpoint {source}")
    if spec is None:
        spec_data = dict(saved["spec"])
        for key in ("obs_shape", "action_shape"):
            if spec_data.get(key) is not None:
                spec_data[key] = tuple(spec_data[key])
        spec = TaskSpec(**spec_data)
    with guard:
        agent = build_agent(saved["target"], config, spec)
    load_agent_state(agent, saved["state"], source)
    return agent


def find(spec: Any, own: Path, results: str | Path = "results") -> Path:
    """Where ``load=`` points: ``true`` is this run's own agent.pt; a path; or keywords (nearest match)."""
    if spec is True:
        if not own.is_file():
            raise UserError(f"load=true but this run has no checkpoint at {own}; train it first (save=true)")
        return own
    text = str(spec)
    path = Path(text).expanduser()
    if path.exists():
        return path / "agent.pt" if path.is_dir() else path
    words = [w.lower() for w in text.replace("/", " ").split()]
    root = Path(results)
    candidates = [p for p in root.rglob("agent.pt") if all(w in str(p).lower() for w in words)
                  and not any(part.startswith(".") for part in p.relative_to(root).parts)] \
        if root.is_dir() else []  # .0.new: a run being trained beside a complete one (ML.runplace)
    if not candidates:
        raise UserError(f"load={text!r}: no path, and no agent.pt under {root}/ whose path contains "
                        f"{' and '.join(map(repr, words))}; pass load=<path to agent.pt>")
    # nearest match: fewest extra path parts, then the most recent
    return min(candidates, key=lambda p: (len(p.parts), -p.stat().st_mtime))


def load_agent(spec: str | Path | bool, results: str | Path = "results", trust: bool = False) -> Any:
    """The agent at a path or named by keywords, in eval mode, ready for inference (``trust``: see ``restore``)."""
    agent = restore(read(find(spec, Path("agent.pt") if spec is True else Path(str(spec)), results)), trust=trust)
    agent.eval()
    return agent
