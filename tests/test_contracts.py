"""Every agent satisfies ``Agent`` (dataset agents ``DatasetAgent``) and every driver ``Driver``: the members
exist on real instances and the method signatures match the protocols'. Nothing crosses the boundary
outside them: building an agent leaves the task's ``spec`` untouched, and what run.json records about the
agent comes from ``describe()``."""

from __future__ import annotations

import copy
import importlib
import inspect
import pkgutil
from typing import Any, Protocol

import pytest

import ML.agents
import ML.collectors
import ML.drivers
from ML.agents.base import Agent, BaseAgent, DatasetAgent
from ML.checkpoints import agent_settings
from ML.collectors import Collector, Evaluation
from ML.drivers import Driver, make_driver
from ML.drivers.interactive import Interactive
from ML.drivers.supervised import Supervised
from ML.envs import datasets
from ML.envs.atari import Atari
from ML.envs.classic import Classic
from ML.envs.datasets import DatasetSettings
from ML.errors import UserError
from ML.hyperparams import instantiate, resolve_config

P = inspect.Parameter


def _classes(package: Any, keep: Any) -> dict[str, type]:
    """The public classes defined in ``package``'s modules for which ``keep(cls)`` holds."""
    found = {}
    for info in pkgutil.iter_modules(package.__path__, package.__name__ + "."):
        module = importlib.import_module(info.name)
        for name, cls in vars(module).items():
            if inspect.isclass(cls) and cls.__module__ == module.__name__ and not name.startswith("_") \
                    and keep(cls):
                found[name] = cls
    return found


AGENTS = _classes(ML.agents, lambda c: issubclass(c, BaseAgent) and c is not BaseAgent)
DRIVERS = _classes(ML.drivers, lambda c: callable(getattr(c, "step", None)))
COLLECTORS = _classes(ML.collectors, lambda c: callable(getattr(c, "collect", None)))
EVALUATORS = _classes(ML.collectors, lambda c: callable(getattr(c, "evaluate", None)))
DATASET_AGENTS = {"ClassifierAgent", "GANAgent"}
TASKS = {"ClassifierAgent": "classify", "GANAgent": "dcgan", "DQNAgent": "dqn", "DrQV2Agent": "drqv2_states",
         "RandomAgent": "random", "RainbowAgent": "der", "SPRAgent": "spr", "PPOAgent": "ppo", "SACAgent": "sac",
         "TogetherAgent": "digits_cartpole"}
ENVS = {"dqn": "CartPole-v1", "drqv2_states": "Pendulum-v1", "random": "CartPole-v1", "ppo": "CartPole-v1",
        "sac": "Pendulum-v1"}


def _members(protocol: type) -> dict[str, Any]:
    """The methods a protocol declares, its protocol bases' included."""
    out: dict[str, Any] = {}
    for klass in reversed(protocol.__mro__):
        if klass in (object, Protocol) or not getattr(klass, "_is_protocol", False):
            continue
        out.update({k: v for k, v in vars(klass).items() if inspect.isfunction(v) and not k.startswith("_")})
    return out


def signature_problems(cls: type, protocol: type) -> list[str]:
    """Where ``cls``'s methods cannot be called the way ``protocol`` says they are."""
    problems = []
    for name, declared in _members(protocol).items():
        method = getattr(cls, name, None)
        if not callable(method):
            problems.append(f"{cls.__name__}.{name} is missing")
            continue
        want = list(inspect.signature(declared).parameters.values())[1:]
        have = list(inspect.signature(method).parameters.values())[1:]
        varargs = [p for p in have if p.kind in (P.VAR_POSITIONAL, P.VAR_KEYWORD)]
        have = [p for p in have if p not in varargs]
        if len(have) < len(want) and not varargs:
            problems.append(f"{cls.__name__}.{name}{inspect.signature(method)} takes fewer arguments than {want}")
            continue
        for w, h in zip(want, have, strict=False):
            if w.kind == P.POSITIONAL_ONLY:
                ok = h.kind in (P.POSITIONAL_ONLY, P.POSITIONAL_OR_KEYWORD)
            else:  # passed by keyword: the same name, kind and default
                ok = (h.name, h.kind, h.default) == (w.name, w.kind, w.default)
            if ok and w.default is not P.empty and h.default is P.empty:
                ok = False  # the caller may leave it out
            if not ok:
                problems.append(f"{cls.__name__}.{name}: parameter {h} where the protocol has {w}")
        problems += [f"{cls.__name__}.{name}: extra parameter {h} without a default" for h in have[len(want):]
                     if h.default is P.empty]
    return problems


def test_the_checker_rejects_a_mismatched_signature():
    class Wrong(BaseAgent):
        def act(self, obs, eval_mode=True):  # no step; another default
            return 0

        def evaluate(self, dataset, out_dir, step=0):  # out_dir before step, and required
            return {}

    problems = signature_problems(Wrong, DatasetAgent)
    assert any("Wrong.act" in p for p in problems) and any("Wrong.evaluate" in p for p in problems)
    assert signature_problems(BaseAgent, Agent) == ["BaseAgent.act is missing"]


def test_every_agent_and_driver_is_listed_here():
    assert set(AGENTS) == set(TASKS), "a new agent: add it to TASKS (and DATASET_AGENTS if it learns from data)"
    assert set(DRIVERS) == {"Composed", "Interactive", "OnPolicy", "Supervised", "Together", "Across"}
    assert signature_problems(DRIVERS["Composed"], Driver) == []  # what Interactive, OnPolicy, Supervised are


def test_every_collector_and_evaluator_satisfies_its_protocol():
    assert set(COLLECTORS) == {"OffPolicy", "Overlapped", "Offline", "Vector", "Rollouts", "Batches"}
    assert set(EVALUATORS) == {"Evaluator", "HeldOut"}
    problems = [p for c in COLLECTORS.values() for p in signature_problems(c, Collector)]
    assert problems + [p for c in EVALUATORS.values() for p in signature_problems(c, Evaluation)] == []


@pytest.mark.parametrize("name", sorted(AGENTS))
def test_agent_satisfies_its_protocol(name: str, workdir):
    protocol = DatasetAgent if name in DATASET_AGENTS else Agent
    assert signature_problems(AGENTS[name], protocol) == []
    task = TASKS[name]
    config = resolve_config(argv=[f"task={task}", "accelerate=true", "device=cpu", "agent.hidden_dim=16"]
                            if task == "drqv2_states" else [f"task={task}", "accelerate=true", "device=cpu"])
    if task == "digits_cartpole":  # the tasks' spec comes from their drivers (Across)
        spec = make_driver(config).spec
        config["Agent"] = name
    elif task in ("der", "spr"):
        spec = Atari(config.env.game, **{k: v for k, v in config.env.items() if k != "game"}).task_spec
    else:
        spec = Classic(ENVS[task]).task_spec if task in ENVS else datasets.load(DatasetSettings.from_config(config))[2]
    before = copy.deepcopy(spec)
    agent = instantiate(config.Agent, {**config.agent, "spec": spec, "settings": agent_settings(config)}, label="Agent")
    assert isinstance(agent, protocol) and type(agent) is AGENTS[name]
    assert spec == before, "building an agent must not write into the task's spec"
    described = agent.describe()
    assert isinstance(described, dict)
    if name in DATASET_AGENTS:  # accelerate=true: the decision reaches run.json through describe()
        assert described["accelerate"]["enabled"] is True


@pytest.mark.parametrize("name, argv", [("Interactive", ["task=dqn"]), ("OnPolicy", ["task=ppo"]),
                                        ("Supervised", ["task=classify"]),
                                        ("Together", ["task=dqn", "env.task=[CartPole-v1,Acrobot-v1]"]),
                                        ("Across", ["task=digits_cartpole"])])
def test_driver_satisfies_its_protocol(name: str, argv: list[str], workdir):
    assert signature_problems(DRIVERS[name], Driver) == []
    config = resolve_config(argv=argv)
    driver = DRIVERS[name](config, make_driver) if name == "Across" else DRIVERS[name](config)
    try:
        assert isinstance(driver, Driver)
        assert isinstance(driver.frames_per_step, int) and driver.episode == 0
    finally:
        if not isinstance(driver, Supervised):
            driver.close(keep=False)


def test_supervised_driver_evaluates_through_the_protocol_only(workdir):
    config = resolve_config(argv=["task=classify", "train_steps=0"])
    driver = Supervised(config)
    driver.open(workdir, False)
    agent = instantiate(config.Agent, {**config.agent,
                                       "spec": driver.spec, "settings": agent_settings(config)}, label="Agent")
    row = driver.evaluate(agent, 0)
    assert 0 <= row["score"] <= 1 and row["score"] == row["accuracy"]
    rl = instantiate("RandomAgent", {"spec": Classic("CartPole-v1").task_spec, "settings": agent_settings(config)},
                     label="Agent")
    with pytest.raises(UserError, match="RandomAgent learns from an environment"):
        driver.evaluate(rl, 0)
    driver.close(keep=False)


def test_state_is_a_read_and_before_checkpoint_settles_the_driver(workdir):
    """``run`` calls ``before_checkpoint`` then ``state``: with N Atari games a step is in flight between loop
    steps, which ``state`` refuses to read past and ``before_checkpoint`` stores (and restarts the games)."""
    config = resolve_config(argv=["task=dqn_atari", "env.num_envs=2", "device=cpu", "replay.capacity=1000"])
    driver = Interactive(config)
    driver.open(workdir, False)
    agent = instantiate(config.Agent, {**config.agent,
                                       "spec": driver.spec, "settings": agent_settings(config)}, label="Agent")
    games, replay = driver.collector.vector, driver.collector.replay
    try:
        for step in range(6):
            driver.step(agent, step)
        assert games.pending and len(replay) == 4  # 3 vector steps sent, 2 stored
        with pytest.raises(RuntimeError, match="before_checkpoint"):
            driver.state()
        driver.before_checkpoint()
        assert not games.pending and len(replay) == 6
        obs = games.obs.copy()
        first = driver.state()
        assert driver.state() == first and (games.obs == obs).all() and len(replay) == 6
    finally:
        driver.close(keep=False)
