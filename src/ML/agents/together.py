"""Tasks of different kinds in one agent (``together:`` with ``share: [Trunk]``, docs/together.md): each task's
own agent, as its recipe builds it, around parts built once and handed to every one of them.

A shared part is one ``nn.Module`` object inside every task's network: each task's optimiser (one per task,
over all of its parameters, the shared ones included) steps it with that task's own loss, and keeps its own
moments for it. agent.pt holds every task's agent; the shared part's tensors are the same tensors under each
task's names, which ``torch.save`` writes once.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

import numpy as np
import torch
from torch import nn

from ML.agents.base import BaseAgent, Bundle
from ML.blocks.network import NetworkSettings
from ML.envs.base import TaskSpec
from ML.errors import UserError
from ML.hyperparams import instantiate, output_shape, resolve


def task_spec(record: dict[str, Any]) -> TaskSpec:
    """A task's spec from its record in the run's spec (``info["together"]["tasks"][i]["spec"]``)."""
    known = {f.name for f in fields(TaskSpec)}
    spec = {k: v for k, v in record.items() if k in known}
    for key in ("obs_shape", "action_shape"):
        if spec.get(key) is not None:
            spec[key] = tuple(spec[key])
    return TaskSpec(**spec)


def build_shared(net: NetworkSettings, names: list[str], width: int, specs: list[TaskSpec]) -> dict[str, nn.Module]:
    """The parts named in ``share``, built once from the run's own ``Eyes``/``Trunk`` settings, for inputs
    every task's network gives them: its observations (Eyes: every task's of one shape) or ``width``
    (``share_width``) features (Trunk: each task's own ``project`` before it)."""
    parts: dict[str, nn.Module] = {}
    if "Eyes" in names:
        shapes = {tuple(s.obs_shape) for s in specs}
        if len(shapes) > 1:
            seen = ", ".join(f"{s.task} {list(s.obs_shape)}" for s in specs)
            raise UserError(f"share: [Eyes] needs every task's observations of one shape, here {seen}; share "
                            "Trunk instead (each task projects its own features to share_width)")
        parts["Eyes"] = instantiate(net.Eyes, dict(net.eyes or {}), shapes.pop(), None, "Eyes")
    if "Trunk" in names:
        features = (int(width),)
        trunk = instantiate(net.Trunk, dict(net.trunk or {}), features, None, "Trunk")
        if len(output_shape(trunk, features)) != 1:
            raise UserError(f"Trunk={net.Trunk} outputs {list(output_shape(trunk, features))} per input, not "
                            "features; a shared Trunk maps share_width features to features (e.g. Trunk=MLP)")
        parts["Trunk"] = trunk
    return parts


class TogetherAgent(BaseAgent):
    """Every task's agent (``tasks[i]``, built as its recipe builds it) with the ``share`` parts in common.

    The driver (``ML.drivers.across``) hands task ``i``'s experience to ``tasks[i]`` itself; this agent is
    what the run checkpoints, evaluates through and restores.

    Args:
        spec: the run's spec; ``info["together"]["tasks"]`` records each task's own spec.
        settings: the run's settings: ``together`` (``share``, ``share_width``, each task's agent to build) and
            ``network`` (the shared parts' ``Eyes``/``Trunk``).
    """

    reads = frozenset({"Eyes", "Trunk"})  # the parts it builds itself: the shared ones

    def __init__(self, spec: Any, settings: Bundle):
        super().__init__()
        if settings.together is None:
            raise UserError("TogetherAgent trains the tasks of together: [...]; list them there "
                            "(docs/together.md) or pick another Agent")
        records = spec.info["together"]["tasks"]
        tasks = settings.together.tasks
        specs = [task_spec(r["spec"]) for r in records]
        names = list(settings.together.share)
        for i, (task, sub_spec) in enumerate(zip(tasks, specs, strict=True)):
            target = task.target(sub_spec)
            built = getattr(resolve(target, "Agent"), "reads", None) or frozenset()
            missing = [n for n in names if n not in built or (n == "Trunk" and "Pool" not in built)]
            if missing:
                raise UserError(f"share: {missing[0]} is not built by together[{i}]'s agent {target} "
                                f"({sub_spec.task}); share only parts every task's agent builds")
        self.shared = nn.ModuleDict(build_shared(settings.network, names, settings.together.share_width, specs))
        self.labels = [r["label"] for r in records]
        self.tasks = nn.ModuleList()
        for task, sub_spec in zip(tasks, specs, strict=True):  # the same shared object in every network
            self.tasks.append(task.build(sub_spec, {name: self.shared[name] for name in names}))
        self.per_task = PerTaskStates(self.tasks)
        for i, agent in enumerate(self.tasks):  # its generators, seen as the agent's own (ML.checkpoints): an
            for name, value in vars(agent).items():  # evaluation stopped midway puts them back as they were
                if not name.startswith("_") and isinstance(value, (np.random.Generator, torch.Generator)):
                    setattr(self, f"{name}_{i}", value)

    def describe(self) -> dict[str, Any]:
        agents: list[Any] = list(self.tasks)
        return {"together_agents": {label: {"agent": type(agent).__name__, **agent.describe()}
                                    for label, agent in zip(self.labels, agents, strict=True)}}

    def act(self, obs: Any, step: int, eval_mode: bool = False) -> Any:
        """Tasks act through their own agents (``tasks[i].act``): an observation does not say its task."""
        raise UserError("TogetherAgent holds one agent per task: act with agent.tasks[i].act(obs, step)")

    def update(self, experience: Any, step: int) -> dict[str, float]:
        """``experience``: ``(task index, that task's experience)``; that task's agent's update."""
        i, inner = experience
        agent: Any = self.tasks[i]
        result: dict[str, float] = agent.update(inner, step)
        return result


class PerTaskStates:
    """What agent.pt keeps of each task's agent besides its modules (which are the ``TogetherAgent``'s own):
    its optimisers, schedulers, random generators and counters, as ``ML.checkpoints`` keeps an agent's."""

    def __init__(self, agents: nn.ModuleList):
        self.agents = agents

    def state_dict(self) -> dict[str, Any]:
        from ML import checkpoints

        return {str(i): {k: v for k, v in checkpoints.agent_state(a).items() if k != "module"}
                for i, a in enumerate(self.agents)}

    def load_state_dict(self, states: dict[str, Any]) -> None:
        from ML import checkpoints

        for i, agent in enumerate(self.agents):
            checkpoints.load_agent_state(agent, {"module": agent.state_dict(), **states[str(i)]})
