"""The atari100k recipe is DrQ(ε) as dopamine runs it: every DrQ_eps.gin value and runner setting, dopamine's
episode starts on the real ROMs, zero-padded replay stacks, and the final evaluation only at the budget."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from ML.blocks.rainbow import FullRainbowNetwork
from ML.blocks.vision import DrQAtariAug
from ML.checkpoints import agent_settings
from ML.envs.atari import Atari
from ML.hyperparams import instantiate, resolve_config
from ML.replay import Replay

# google/dopamine (Apache-2.0) labs/atari_100k/configs/DrQ_eps.gin, and the defaults of the classes it binds
# that it leaves alone (create_optimizer's betas, Runner.clip_rewards, DataEfficientAtariRunner's max_noops
# and num_eval_envs, AtariPreprocessing's frame_skip/screen_size, JaxDQNAgent's stack_size).
DRQ_EPS_GIN = {
    "JaxDQNAgent.gamma": 0.99, "JaxDQNAgent.update_horizon": 10, "JaxDQNAgent.min_replay_history": 1600,
    "JaxDQNAgent.update_period": 1, "JaxDQNAgent.target_update_period": 1, "JaxDQNAgent.epsilon_train": 0.01,
    "JaxDQNAgent.epsilon_eval": 0.001, "JaxDQNAgent.epsilon_decay_period": 5000, "JaxDQNAgent.optimizer": "adam",
    "JaxFullRainbowAgent.noisy": False, "JaxFullRainbowAgent.dueling": True, "JaxFullRainbowAgent.double_dqn": True,
    "JaxFullRainbowAgent.distributional": False, "JaxFullRainbowAgent.num_atoms": 1,
    "JaxFullRainbowAgent.num_updates_per_train_step": 1, "JaxFullRainbowAgent.replay_scheme": "uniform",
    "Atari100kRainbowAgent.data_augmentation": True, "create_optimizer.learning_rate": 0.0001,
    "create_optimizer.eps": 0.00015, "create_optimizer.beta1": 0.9, "create_optimizer.beta2": 0.999,
    "create_atari_environment.sticky_actions": False, "AtariPreprocessing.terminal_on_life_loss": True,
    "AtariPreprocessing.frame_skip": 4, "AtariPreprocessing.screen_size": 84, "JaxDQNAgent.stack_size": 4,
    "training_steps": 100_000, "MaxEpisodeEvalRunner.num_eval_episodes": 100,
    "Runner.max_steps_per_episode": 27_000, "Runner.clip_rewards": True, "OutOfGraphReplayBuffer.batch_size": 32,
    "DataEfficientAtariRunner.max_noops": 30, "DataEfficientAtariRunner.num_eval_envs": 100,
}


def _agent(spec, **overrides):
    config = resolve_config((), {"task": "atari100k", "device": "cpu", **overrides})
    return config, instantiate(config.Agent, {**config.agent,
                                              "spec": spec, "settings": agent_settings(config)}, label="Agent")


def test_recipe_sets_every_drq_eps_gin_value() -> None:
    g = DRQ_EPS_GIN
    spec = Atari("pong", protocol="atari100k").task_spec
    config, agent = _agent(spec)
    env = Atari(**config.env).task_spec.info
    net = agent.q[1]
    ours = {
        "JaxDQNAgent.gamma": agent.gamma, "JaxDQNAgent.update_horizon": agent.n_step,
        "JaxDQNAgent.min_replay_history": agent.learn_start, "JaxDQNAgent.update_period": agent.update_every,
        "JaxDQNAgent.target_update_period": agent.target_update, "JaxDQNAgent.epsilon_train": agent.eps_end,
        "JaxDQNAgent.epsilon_eval": agent.eval_eps, "JaxDQNAgent.epsilon_decay_period": agent.eps_decay_steps,
        "JaxDQNAgent.optimizer": type(agent.optim).__name__.lower().removeprefix("fused"),
        "JaxFullRainbowAgent.noisy": net.noisy, "JaxFullRainbowAgent.dueling": net.dueling,
        "JaxFullRainbowAgent.double_dqn": agent.double_q, "JaxFullRainbowAgent.distributional": net.distributional,
        "JaxFullRainbowAgent.num_atoms": net.num_atoms, "JaxFullRainbowAgent.num_updates_per_train_step":
            agent.updates_per_step, "JaxFullRainbowAgent.replay_scheme": "uniform",  # ML.replay samples uniformly
        "Atari100kRainbowAgent.data_augmentation": isinstance(agent.aug, DrQAtariAug),
        "create_optimizer.learning_rate": agent.optim.param_groups[0]["lr"],
        "create_optimizer.eps": agent.optim.param_groups[0]["eps"],
        "create_optimizer.beta1": agent.optim.param_groups[0]["betas"][0],
        "create_optimizer.beta2": agent.optim.param_groups[0]["betas"][1],
        "create_atari_environment.sticky_actions": env["sticky_actions"] > 0,
        "AtariPreprocessing.terminal_on_life_loss": env["terminal_on_life_loss"],
        "AtariPreprocessing.frame_skip": env["frame_skip"], "AtariPreprocessing.screen_size": env["screen_size"],
        "JaxDQNAgent.stack_size": env["frame_stack"], "training_steps": config.train_steps,
        "MaxEpisodeEvalRunner.num_eval_episodes": config.evaluate_episodes_final,
        "Runner.max_steps_per_episode": env["max_episode_frames"] // env["frame_skip"],
        "Runner.clip_rewards": agent.reward_clip == 1.0, "OutOfGraphReplayBuffer.batch_size": config.batch_size,
        "DataEfficientAtariRunner.max_noops": env["noop_max"] if env["starts"] == "dopamine" else None,
        "DataEfficientAtariRunner.num_eval_envs": config.evaluate_envs,
    }
    assert ours == g
    assert not env["full_action_space"] and agent.huber and agent.grad_clip == 0.0 and agent.tau == 0.0
    assert isinstance(net, FullRainbowNetwork) and sum(p.numel() for p in agent.q.parameters()) == 4_047_015
    assert (agent.aug.pad, agent.aug.scale) == (4, 0.05)  # drq_image_augmentation's img_pad, _intensity_aug's scale
    assert agent.optim.param_groups[0]["weight_decay"] == 0


def test_epsilon_is_linearly_decaying_epsilon_at_training_steps_plus_one() -> None:
    """dopamine's action at step t (0-based) uses linearly_decaying_epsilon(5000, t + 1, 1600, 0.01):
    ``_train_step`` counts the step before ``select_action``."""
    _, agent = _agent(Atari("pong").task_spec)

    def dopamine(step: int) -> float:
        return 0.01 + float(np.clip((1 - 0.01) * (5000 + 1600 - step) / 5000, 0.0, 1 - 0.01))

    for t in (0, 1598, 1599, 1600, 2000, 4100, 6598, 6599, 6600, 50_000):
        assert agent.epsilon(t) == pytest.approx(dopamine(t + 1), abs=1e-12)


def _frame_number(env: Atari) -> int:
    return env.unwrapped.ale.getEpisodeFrameNumber()


def test_dopamine_starts_noop_steps_and_zero_padded_stacks() -> None:
    env = Atari("pong", protocol="atari100k")
    counts = set()
    for episode in range(160):  # one seeded reset (the emulator reloads: slow), then the seed's stream
        obs, _ = env.reset(seed=0 if episode == 0 else None)
        counts.add(_frame_number(env))
        assert not obs[:3].any() and obs[3].any()  # reset_all: zeros, then the first frame
    assert counts == {4 * k for k in range(30)}  # 0..29 no-op steps of 4 frames
    gym = Atari("pong", protocol="atari100k", starts="gymnasium")
    obs, _ = gym.reset(seed=0)
    assert (obs == obs[:1]).all() and 1 <= _frame_number(gym) <= 30  # gymnasium's 1..30 no-op frames


def test_a_lost_life_goes_on_with_the_agents_action_and_a_zeroed_stack() -> None:
    train = Atari("breakout", protocol="atari100k")
    train.reset(seed=0)
    for i in range(3000):
        obs, _, terminated, _, info = train.step(1 if i % 10 == 0 else 3)  # FIRE now and then
        if terminated:
            break
    assert info.get("life_loss")
    frames = _frame_number(train)
    start, _ = train.reset(seed=5)
    assert _frame_number(train) == frames  # no no-op step: the agent acts next
    assert not start[:3].any() and np.array_equal(start[3], obs[3])

    evaluation = Atari("breakout", protocol="atari100k", evaluation=True)
    evaluation.reset(seed=0)
    lives = evaluation.unwrapped.ale.lives()
    for i in range(3000):
        obs, _, terminated, _, _ = evaluation.step(1 if i % 10 == 0 else 3)
        if evaluation.unwrapped.ale.lives() < lives:
            break
    assert not terminated and not obs[:3].any() and obs[3].any()  # the runner's reset_one at a terminal


def test_a_lost_life_stops_the_frame_skip_as_dopamines_preprocessing() -> None:
    env = Atari("breakout", protocol="atari100k", evaluation=True)  # plays through its lives
    env.reset(seed=0)
    lost, other = [], set()
    for i in range(6000):
        before, lives = _frame_number(env), env.unwrapped.ale.lives()
        _, _, terminated, truncated, _ = env.step(1 if i % 10 == 0 else 3)
        (lost.append if env.unwrapped.ale.lives() < lives else other.add)(_frame_number(env) - before)
        if terminated or truncated:
            break
    assert terminated and len(lost) == 5 and other == {4}  # every other step repeats the action 4 times
    assert all(1 <= d <= 4 for d in lost) and min(lost) < 4  # a lost life stops the repeats at its frame


def test_replay_pads_stacks_with_zeros_before_an_episodes_first_frame() -> None:
    replay = Replay(None, 100, (4, 2, 2), np.uint8, (), np.int64, frame_stack=4, zero_pad=True)
    for episode in range(2):
        replay.start(np.full((4, 2, 2), 10 * episode + 1, np.uint8))
        for t in range(1, 6):
            replay.add(0, 0.0, np.full((4, 2, 2), 10 * episode + 1 + t, np.uint8), t == 5, False)
    batch = replay.sample(200, n_step=10, gamma=0.9)
    for obs, nxt in zip(batch["obs"], batch["next_obs"], strict=True):
        first = int(obs[3, 0, 0]) // 10 * 10 + 1  # the episode's first frame
        want = [v if v >= first else 0 for v in range(int(obs[3, 0, 0]) - 3, int(obs[3, 0, 0]) + 1)]
        assert obs[:, 0, 0].tolist() == want
        assert nxt[:3, 0, 0].tolist() == [v if v >= first else 0 for v in range(int(nxt[3, 0, 0]) - 3,
                                                                                  int(nxt[3, 0, 0]))]
    repeat = Replay(None, 100, (4, 2, 2), np.uint8, (), np.int64, frame_stack=4)
    repeat.start(np.full((4, 2, 2), 1, np.uint8))
    repeat.add(0, 0.0, np.full((4, 2, 2), 2, np.uint8), False, False)
    assert repeat.sample(1)["obs"][0, :, 0, 0].tolist() == [1, 1, 1, 1]  # gymnasium's stacks repeat it


def test_the_final_100_episodes_only_at_the_protocols_budget(tmp_path) -> None:
    from ML.drivers.interactive import Interactive

    def driver(train_steps: int) -> tuple[Interactive, Any]:
        config = resolve_config((), {"task": "atari100k", "device": "cpu", "train_steps": train_steps,
                                     "evaluate_episodes": 1, "evaluate_episodes_final": 3,
                                     "env": {"game": "pong", "protocol": "atari100k", "max_episode_frames": 160}})
        built = Interactive(config)
        built.open(tmp_path / str(train_steps), resume=False)
        return built, config

    short, config = driver(200)
    agent = instantiate(config.Agent, {**config.agent,
                                       "spec": short.spec, "settings": agent_settings(config)}, label="Agent")
    assert short.evaluate(agent, 200)["episodes"] == 1  # 200 steps are not Atari-100k's 100k: no final 100
    short.close(keep=False)
    full, _ = driver(100_000)
    final = full.evaluate(agent, 100_000)
    assert final["episodes"] == 3 and len(full.evaluator._envs) == 3  # one env per episode (evaluate_envs 100)
    full.close(keep=False)
    with torch.no_grad():
        assert agent.act_batch(np.zeros((2, 4, 84, 84), np.uint8), 0, eval_mode=True).shape == (2,)


def _card(**overrides):
    from ML.envs.base import EvaluationSettings
    from ML.published import agent_card
    from ML.runinfo import protocol_card
    from ML.runsettings import RunSettings

    config = resolve_config((), {"task": "atari100k", "device": "cpu", **overrides})
    spec = Atari(**config.env).task_spec
    _, agent = _agent(spec, **overrides)
    return protocol_card(spec, agent, RunSettings.from_config(config), EvaluationSettings.from_config(config),
                         agent_card(config), spec.action_repeat)


def test_the_reference_is_drawn_only_beside_the_published_agent(tmp_path) -> None:
    import json

    import pandas as pd

    from ML.benchmarking import analysis, cells, references

    drq = _card()
    assert drq["reference"] == {"reference": "DrQ(eps)", "source": references.published.DRQ_EPS.source,
                                "matches": True, "differences": []}
    other = _card(**{"agent.n_step": 3, "Model": "NatureCNN", "model": {}, "Aug": "RandomShiftsAug", "aug": {}})
    differences = other["reference"]["differences"]
    assert not other["reference"]["matches"] and "agent.n_step 3 (published: 10)" in differences
    assert any(d.startswith("model NatureCNN(") for d in differences)
    assert any(d.startswith("augmentation RandomShiftsAug(pad=4) (published: DrQAtariAug") for d in differences)
    assert references.ATARI100K_REFERENCE.matched(drq) == "DrQ(eps)"
    assert references.ATARI100K_REFERENCE.matched(other) is None

    runs = []  # run.json files as the engine writes their cards: every Atari-100k game, both recipes
    games = sorted(references.atari100k_games())
    for recipe, card in (("drq", drq), ("other", other)):
        for game in games:
            run = tmp_path / "E" / "runs" / recipe / "Atari" / game / "0"
            run.mkdir(parents=True)
            (run / "run.json").write_text(json.dumps({"status": "complete", "experiment": "E", "recipe": recipe,
                                                      "suite": "Atari", "task": game, "seed": 0, "protocol": card}))
            runs.append(run / "run.json")
    table = cells.table(runs)
    row = table[table["recipe"] == "other"].iloc[0]
    assert row["reference"] == "DrQ(eps)" and "agent.n_step 3 (published: 10)" in row["differences"]
    assert (table.loc[table["recipe"] == "drq", "differences"] == "").all()
    scores = pd.DataFrame({"experiment": "E", "recipe": ["drq"] * 26 + ["other"] * 26, "suite": "Atari",
                           "task": games * 2, "seed": 0, "step": 100_000, "frame": 400_000, "time": 0.0,
                           "score": 1.0, "normalized": 0.1})
    status = analysis.reference_status(scores, table)["Atari"]
    assert status["matched"] == ["drq"] and "DrQ(eps): agent.n_step 3 (published: 10)" in status["left_out"]["other"]


def test_the_vector_env_refuses_dopamines_starts() -> None:
    from ML.envs.atari_vector import AtariVector
    from ML.errors import UserError

    with pytest.raises(UserError, match=r"env.num_envs=2 .*env.starts=dopamine.*env.starts=gymnasium"):
        AtariVector(Atari("pong", protocol="atari100k"), 2)
