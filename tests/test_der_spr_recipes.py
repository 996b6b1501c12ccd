"""The der and spr recipes hold every value of dopamine's DER.gin / SPR.gin (copied unchanged into
tests/data/dopamine/, google/dopamine labs/atari_100k/configs, Apache-2.0), and train on a real ALE game
through the real ML command."""

from __future__ import annotations

import ast
import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest

import ML
from ML import published
from ML.envs.atari import PROTOCOLS
from ML.hyperparams import resolve_config
from tests.conftest import run_ml

GIN = Path(__file__).parent / "data" / "dopamine"


def gin_values(name: str) -> dict[str, object]:
    """``Configurable.param = value`` bindings of a gin file (values as Python literals or @references)."""
    values = {}
    for line in (GIN / name).read_text().splitlines():
        line = line.split("#")[0].strip()
        if "=" not in line:
            continue
        key, value = (part.strip() for part in line.split("=", 1))
        key = key.rsplit(".", 2)[-2] + "." + key.rsplit(".", 1)[-1]  # drop module paths
        values[key] = value if value.startswith("@") else ast.literal_eval(value.replace("_", ""))
    return values


def recipe_values(task: str, gin: dict[str, object]) -> dict[str, object]:
    """What the recipe sets for each gin binding, in the gin's terms (or why it does not apply)."""
    c = resolve_config((), {"task": task})
    env = PROTOCOLS[c.env.protocol]
    noisy = c.model.noisy
    # linearly_decaying_epsilon(decay, step, warmup, eps); noisy DER: zero_epsilon
    epsilon_fn = "@jax.agents.dqn.dqn_agent.linearly_decaying_epsilon"
    # ε at training_steps = step + 1: held at 1 through step learn_start - 1
    uses_epsilon_fn = c.agent.eps_start == 1.0 and c.agent.eps_hold_steps == c.agent.learn_start - 1
    out = {
        "JaxDQNAgent.gamma": c.agent.gamma,
        "JaxDQNAgent.update_horizon": c.agent.n_step,
        "JaxDQNAgent.min_replay_history": c.agent.learn_start,
        "JaxDQNAgent.update_period": c.agent.update_every,
        "JaxDQNAgent.target_update_period": c.agent.target_update,
        "JaxDQNAgent.epsilon_eval": c.agent.eval_eps,
        "JaxDQNAgent.optimizer": c.Optim.lower(),
        "JaxFullRainbowAgent.noisy": noisy,
        "JaxFullRainbowAgent.dueling": c.model.dueling,
        "JaxFullRainbowAgent.double_dqn": c.agent.double,
        "JaxFullRainbowAgent.distributional": c.model.distributional,
        "JaxFullRainbowAgent.num_atoms": c.model.num_atoms,
        "JaxFullRainbowAgent.vmax": c.model.vmax,
        "JaxFullRainbowAgent.replay_scheme": "prioritized" if c.agent.prioritized else "uniform",
        "JaxFullRainbowAgent.num_updates_per_train_step": c.agent.updates_per_step,
        "Atari100kRainbowAgent.data_augmentation": bool(c.agent.augment and c.Aug == "DrQAtariAug"),
        "create_optimizer.learning_rate": c.lr,
        "create_optimizer.eps": c.optim.eps,
        "create_atari_environment.game_name": c.env.game.capitalize(),
        "create_atari_environment.sticky_actions": env["sticky_actions"] > 0,
        "AtariPreprocessing.terminal_on_life_loss": env["terminal_on_life_loss"],
        "Runner.num_iterations": c.train_steps // gin["Runner.training_steps"],
        "Runner.training_steps": c.train_steps // gin["Runner.num_iterations"],
        "MaxEpisodeEvalRunner.num_eval_episodes": c.evaluate_episodes_final,
        "Runner.max_steps_per_episode": env["max_episode_frames"] // env["frame_skip"],
    }
    if noisy and task == "der":  # JaxFullRainbowAgent: epsilon_fn = zero_epsilon when noisy
        assert c.agent.eps_start == c.agent.eps_end == 0.0
        out["JaxFullRainbowAgent.epsilon_fn"] = epsilon_fn  # bound, then replaced by zero_epsilon
        out["JaxDQNAgent.epsilon_train"] = gin["JaxDQNAgent.epsilon_train"]  # unused (ε is 0)
        out["JaxDQNAgent.epsilon_decay_period"] = gin["JaxDQNAgent.epsilon_decay_period"]  # unused
    else:  # SPRAgent restores linearly_decaying_epsilon
        assert uses_epsilon_fn
        out["SPRAgent.epsilon_fn"] = epsilon_fn
        out["JaxDQNAgent.epsilon_train"] = c.agent.eps_end
        out["JaxDQNAgent.epsilon_decay_period"] = c.agent.eps_decay_steps
        out["SPRAgent.spr_weight"] = c.agent.spr_weight
        out["SPRAgent.jumps"] = c.agent.jumps
        out["JaxFullRainbowAgent.network"] = "@dopamine.labs.atari_100k.spr_networks.SPRNetwork" \
            if c.model.renormalize and c.model.sigma0 == 0.5 else "FullRainbowNetwork"
    for key in gin:  # every batch_size binding is the recipe's batch size
        if key.endswith(".batch_size"):
            out[key] = c.batch_size
    return out


# bindings that do not carry over, each said in the recipe: replay capacity (1M "as a proxy for unbounded";
# the recipe keeps the run's 100k steps), and checkpoint retention
NOT_APPLICABLE = {"replay_capacity", "max_capacity", "keep_every"}


@pytest.mark.parametrize("task, gin", [("der", "DER.gin"), ("spr", "SPR.gin")])
def test_recipe_holds_every_gin_value(task: str, gin: str) -> None:
    values = gin_values(gin)
    ours = recipe_values(task, values)
    for key, value in values.items():
        if key.split(".")[-1] in NOT_APPLICABLE:
            continue
        assert key in ours, f"{gin}: {key} = {value} has no counterpart in the {task} recipe"
        if isinstance(value, float):
            assert ours[key] == pytest.approx(value), key
        else:
            assert ours[key] == value, key
    c = resolve_config((), {"task": task})
    assert c.agent.grad_clip == 0.0 and c.agent.reward_clip == 1.0  # no clipping in optax's adam; Runner's
    assert PROTOCOLS[c.env.protocol]["starts"] == "dopamine" and "noop_max" not in c.env  # 0..29 no-op steps
    assert c.evaluate_envs == 100


@pytest.mark.parametrize("task, name", [("der", "DER"), ("spr", "SPR")])
def test_the_recipe_is_the_published_configuration_and_a_change_is_not(task: str, name: str) -> None:
    def card(**overrides: object) -> dict[str, object]:  # run.json's protocol card at the protocol's budget
        return {**published.ATARI100K_ENV, **published.agent_card(resolve_config((), {"task": task, **overrides}))}

    reference = published.compare(card(), "Atari")
    assert reference["reference"] == name and reference["matches"], reference["differences"]
    changed = published.compare(card(**{"agent.n_step": 3, "agent.prioritized": False}), "Atari")
    assert changed["reference"] == name and not changed["matches"]
    assert set(changed["differences"]) == {"agent.n_step 3 (published: 10)", "agent.prioritized False (published: "
                                           "True)", "replay uniform (published: prioritized)"}


def _rows(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(path.open()))


@pytest.mark.parametrize("task, args", [
    ("der", ["train_steps=240", "agent.learn_start=200", "agent.target_update=20"]),
    ("spr", ["train_steps=220", "agent.learn_start=200", "agent.eps_hold_steps=200", "agent.eps_decay_steps=10"]),
])
def test_trains_on_a_real_game_through_the_command(task: str, args: list[str], workdir: Path) -> None:
    run_ml(f"task={task}", "env.game=pong", "env.max_episode_frames=1200", "batch_size=8", "threads=1", "device=cpu",
           "evaluate_per_steps=0",
           "evaluate_episodes=1", "evaluate_episodes_final=1", "log_per_steps=20", "replay.save=false", *args,
           cwd=workdir, timeout=600)
    run = workdir / "results" / "Exp" / "runs" / task / "Atari" / "pong" / "0"
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "complete" and info["env"]["protocol"] == "atari100k"
    reference = info["protocol"]["reference"]  # the nearest published configuration: this agent's, not matched
    assert reference["reference"] == task.upper() and not reference["matches"]
    assert "agent.learn_start 200 (published: " in "; ".join(reference["differences"])
    assert any("bootstraps" in d for d in info["env"]["reference_differences"])  # the agent's describe()
    learned = [r for r in _rows(run / "train.csv") if r["loss"]]
    assert learned and all(math.isfinite(float(r["loss"])) for r in learned)
    assert int(learned[0]["step"]) >= 200  # nothing before learn_start
    if task == "spr":
        assert all(float(r["spr_loss"]) > 0 and float(r["td_loss"]) > 0 for r in learned)
        epsilon = [float(r["epsilon"]) for r in learned]  # a log row averages its steps
        assert 0.0 < epsilon[-1] < 0.5  # 1 for 200 steps, then to 0 over 10 (the last 20 averaged)
    else:
        assert all(float(r["epsilon"]) == 0.0 for r in learned)  # noisy: zero_epsilon
    assert len(_rows(run / "eval.csv")) == 2
    agent = ML.load_agent(str(run / "agent.pt"))  # the checkpoint rebuilds the agent, SPR's heads included
    assert type(agent).__name__ == ("SPRAgent" if task == "spr" else "RainbowAgent")
    assert 0 <= agent.act(np.zeros((4, 84, 84), np.uint8), 10**6, eval_mode=True) < 6


def test_prioritized_replay_with_several_games_is_refused_in_one_line(workdir: Path) -> None:
    proc = run_ml("task=der", "env.num_envs=2", "env.starts=gymnasium", "train_steps=1", "threads=1", "device=cpu",
                  cwd=workdir, check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "prioritized replay samples one replay" in proc.stderr and "agent.prioritized=false" in proc.stderr
    assert not (workdir / "results").exists() or not list((workdir / "results").rglob("agent.pt"))
