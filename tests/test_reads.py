"""Nothing silently ignored: each agent says which parts it builds (BaseAgent.reads); a part it does not build
is refused (tests/test_bad_input.py: DrQ-v2 with Model=CNN), and the parts DQN used to drop, a Scheduler and a
Trunk, are now built."""

from __future__ import annotations

import pytest
import torch

from ML.agents import reads
from ML.checkpoints import agent_state, build_agent
from ML.envs.classic import Classic
from ML.errors import UserError
from ML.hyperparams import recipes, resolve, resolve_config

SMALL = {"threads": 1, "batch_size": 8, "train_steps": 1010}


def _dqn(**settings):
    config = resolve_config((), {"task": "dqn", **SMALL, **settings})
    return build_agent(config.Agent, config, Classic("CartPole-v1").task_spec)


def _batch() -> dict[str, torch.Tensor]:
    return {"obs": torch.randn(8, 4), "next_obs": torch.randn(8, 4), "action": torch.randint(0, 2, (8,)),
            "reward": torch.randn(8), "discount": torch.full((8,), 0.97)}


def test_dqn_steps_a_scheduler_once_per_update_and_checkpoints_it() -> None:
    agent = _dqn(Scheduler="StepLR", scheduler={"step_size": 1, "gamma": 0.5})
    for _ in range(3):
        agent.learn(_batch())
    assert agent.optim.param_groups[0]["lr"] == pytest.approx(1e-3 / 8)
    assert "scheduler" in agent_state(agent)["objects"]  # resumes where it was
    cosine = _dqn(Scheduler="CosineAnnealingLR")
    assert cosine.scheduler.T_max == (1010 - 1000) // 2  # the run's updates: (train_steps - learn_start) / 2


def test_dqn_builds_pool_and_trunk_between_eyes_and_model() -> None:
    plain, trunked = _dqn(), _dqn(Trunk="MLP", trunk={"hidden_dim": 16})
    assert sum(p.numel() for p in trunked.q.parameters()) > sum(p.numel() for p in plain.q.parameters())
    assert trunked.q[0][-1].__class__.__name__ == "MLP"  # Eyes → Trunk, then the Model
    trunked.learn(_batch())


def test_a_part_no_agent_of_this_task_builds_is_refused_before_anything_is_built() -> None:
    config = resolve_config((), {"task": "random", "Scheduler": "StepLR"})
    with pytest.raises(UserError, match="Scheduler=StepLR would be ignored: RandomAgent .* built by "
                                        "ClassifierAgent, DQNAgent"):
        reads.check(config.Agent, config)
    reads.check("DQNAgent", resolve_config((), {"task": "dqn", "Scheduler": "StepLR"}))  # builds it: passes
    with pytest.raises(UserError, match=r"agent.critic_tau: DQNAgent takes no critic_tau; it is an argument of "
                                        r"DrQV2Agent\b"):
        reads.check("DQNAgent", resolve_config((), {"task": "dqn", "agent": {"critic_tau": 0.1}}))


@pytest.mark.parametrize("recipe", sorted(p.stem for p in recipes.BUILTIN.glob("*.yaml")
                                          if not p.stem.startswith("_") and p.stem != "RL"))
def test_every_built_in_recipe_sets_only_parts_its_agent_builds(recipe: str) -> None:
    config = resolve_config((), {"task": recipe})
    agent = resolve(config.Agent or ("ClassifierAgent" if config.get("Dataset") else "DQNAgent"), "Agent")
    assert agent.reads is not None, f"{agent.__name__} does not declare the parts it builds"
    assert set(reads.set_parts(config)) <= agent.reads
