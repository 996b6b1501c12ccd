"""UnifiedML's RL commands: ``task=RL`` picks DQN or DrQ-v2 by the action space.

Every config of a sweep is resolved (in process, as ``ML`` does before training any), then the real ``ML``
trains the command on tiny budgets (1 step, 1 evaluation episode, small images)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ML.errors import UserError
from ML.hyperparams import resolve_config
from tests.conftest import run_ml

DMC_COMMAND = "-m experiment=DMC task=RL Env=DMC +env.task=cartpole_balance,quadruped_walk,walker_walk,cheetah_run"
ATARI_GAMES = ("alien,amidar,assault,asterix,bankheist,battlezone,boxing,breakout,choppercommand,crazyclimber,"
               "demonattack,freeway,frostbite,gopher,hero,jamesbond,kangaroo,krull,kungfumaster,mspacman,pong,"
               "privateeye,qbert,roadrunner,seaquest,upndown")
ATARI_COMMAND = f"-m experiment=ALE task=RL Env=Atari +env.game={ATARI_GAMES}"
TINY = ["train_steps=1", "evaluate_episodes=1", "threads=1", "progress=false", "save=false", "replay.save=false"]


def sweep(command: str) -> list[dict]:
    from ML.cli import expand

    return [resolve_config(argv=run) for run in expand(command.split())]


def test_dmc_command_resolves_drqv2_with_each_tasks_protocol() -> None:
    configs = {c["env"]["task"]: c for c in sweep(DMC_COMMAND)}
    assert list(configs) == ["cartpole_balance", "quadruped_walk", "walker_walk", "cheetah_run"]
    for c in configs.values():
        assert c["Agent"] == "DrQV2Agent" and c["Eyes"] == "Encoder" and c["env"]["pixels"] is True
        assert c["task"] == "RL" and c["experiment"] == "DMC"
    # DrQ-v2's cfgs/task/<task>.yaml: easy (cartpole_balance, walker_walk) vs medium (quadruped_walk, cheetah_run)
    assert configs["cartpole_balance"]["train_steps"] == 550_000
    assert configs["cartpole_balance"]["agent"]["stddev_schedule"] == "linear(1.0,0.1,100000)"
    assert configs["quadruped_walk"]["train_steps"] == 1_550_000
    assert configs["cheetah_run"]["agent"]["stddev_schedule"] == "linear(1.0,0.1,500000)"
    assert configs["walker_walk"]["agent"]["n_step"] == 1 and configs["walker_walk"]["batch_size"] == 512
    assert configs["cheetah_run"]["agent"]["n_step"] == 3 and configs["cheetah_run"]["batch_size"] == 256


def test_states_and_classic_pick_by_action_space() -> None:
    states = resolve_config(argv=["task=RL", "Env=DMC", "+env.task=cheetah_run", "+env.pixels=false"])
    assert states["Agent"] == "DrQV2Agent" and states["Eyes"] == "Identity" and states["Aug"] is None
    discrete = resolve_config(argv=["task=RL", "env.task=Acrobot-v1"])
    assert discrete["Agent"] == "DQNAgent" and discrete["Env"] == "Classic"
    continuous = resolve_config(argv=["task=RL", "env.task=Pendulum-v1"])
    assert continuous["Agent"] == "DrQV2Agent" and continuous["Env"] == "Classic"
    assert continuous["env"] == {"task": "Pendulum-v1"}  # the DMC-only settings are not passed to Classic
    with pytest.raises(UserError, match="unknown DMC task"):
        resolve_config(argv=["task=RL", "Env=DMC", "+env.task=cheetah_walk"])


def test_atari_command_resolves_drq_eps_on_every_game() -> None:
    configs = sweep(ATARI_COMMAND)
    assert [c["env"]["game"] for c in configs] == ATARI_GAMES.split(",")
    for c in configs:
        assert c["Agent"] == "DQNAgent" and c["Model"] == "FullRainbowNetwork" and c["env"]["protocol"] == "atari100k"
        assert c["train_steps"] == 100_000 and c["model"]["dueling"] is True


def test_dmc_command_trains_as_written(tmp_path: Path) -> None:
    """The document's DMC command (two of its four tasks, to keep CPU time short; all four resolve above)."""
    command = DMC_COMMAND.replace("cartpole_balance,quadruped_walk,walker_walk,cheetah_run",
                                  "cartpole_balance,walker_walk")
    run_ml(*command.split(), *TINY, "env.size=16", "+env.fast_render=true", cwd=tmp_path, MUJOCO_GL="egl")
    for task in ("cartpole_balance", "walker_walk"):
        info = json.loads((tmp_path / f"results/DMC/runs/RL/DMC/{task}/0/run.json").read_text())
        assert info["status"] == "complete" and info["config"]["Agent"] == "DrQV2Agent"
        assert info["recipe"] == "RL" and info["suite"] == "DMC"
        card = info["protocol"]  # the protocol card: what decides comparability
        assert (card["observation"], card["action_repeat"], card["frame_stack"]) == ("pixels 16x16", 2, 3)
        assert card["max_episode_frames"] == 1000 and card["frame_budget"] == 2 and card["eval_episodes"] == 1


def test_atari_command_trains_as_written(tmp_path: Path) -> None:
    """The document's Atari command on two of its 26 games, episodes capped at 2,000 frames."""
    command = ATARI_COMMAND.replace(ATARI_GAMES, "pong,breakout")
    run_ml(*command.split(), *TINY, "env.max_episode_frames=2000", "evaluate_episodes_final=1", cwd=tmp_path)
    for game in ("pong", "breakout"):
        info = json.loads((tmp_path / f"results/ALE/runs/RL/Atari/{game}/0/run.json").read_text())
        assert info["status"] == "complete" and info["config"]["Agent"] == "DQNAgent"
        assert info["env"]["terminal_on_life_loss"] is True and info["env"]["sticky_actions"] == 0.0
        card = info["protocol"]
        assert (card["sticky_actions"], card["noop_max"], card["terminal_on_life_loss"]) == (0.0, 30, True)
        assert card["episode_starts"] == "dopamine" and card["reference"]["reference"] == "DrQ(eps)"
        assert "max_episode_frames 2000 (published: 108000)" in card["reference"]["differences"]
        assert card["action_set"].startswith("minimal") and card["eval_epsilon"] == 0.001
        assert (card["action_repeat"], card["frame_stack"], card["max_episode_frames"]) == (4, 4, 2000)
        assert card["frame_budget"] == 4 and card["final_eval_episodes"] == 1


def test_final_evaluation_has_its_own_episode_count(tmp_path: Path) -> None:
    """A protocol's final score (Atari-100k: 100 episodes) while intermediate evaluations stay short."""
    run_ml("task=dqn", "train_steps=4", "evaluate_per_steps=2", "evaluate_episodes=1", "evaluate_episodes_final=3",
           "threads=1", "progress=false", "save=false", "replay.save=false", cwd=tmp_path)
    rows = (tmp_path / "results/Exp/runs/dqn/Classic/CartPole-v1/0/eval.csv").read_text().splitlines()
    header = rows[0].split(",")
    episodes = [int(float(r.split(",")[header.index("episodes")])) for r in rows[1:]]
    assert episodes == [1, 1, 3]
