"""DrQ-v2: its vision blocks, the agent from states (Pendulum-v1 end to end) and from DMC pixels."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest
import torch

try:  # triton's LLVM must load before Mesa's (EGL rendering), or building an optimizer later segfaults
    import triton._C.libtriton  # noqa: F401
except ImportError:
    pass

import ML
from ML.agents.drqv2 import DrQV2Agent, Schedule
from ML.blocks.vision import Encoder, NatureCNN, RandomShiftsAug
from ML.checkpoints import agent_settings
from ML.envs.classic import Classic
from ML.errors import UserError
from ML.hyperparams import instantiate, resolve, resolve_config
from ML.replay import Replay
from tests.conftest import run_ml

FAST = {"agent.hidden_dim": 64, "agent.feature_dim": 16, "batch_size": 32, "threads": 1}


def _agent(spec, config, **args) -> DrQV2Agent:
    return instantiate(config.Agent, {**config.agent, **args,
                                      "spec": spec, "settings": agent_settings(config)}, label="Agent")


# -- blocks --------------------------------------------------------------------------------------------


def test_random_shifts_are_whole_pixel_crops_of_the_replicate_padded_image() -> None:
    torch.manual_seed(0)
    pad = 4
    x = torch.rand(16, 3, 20, 20) * 255
    out = RandomShiftsAug(pad=pad)(x)
    assert out.shape == x.shape and out.dtype == torch.float32
    padded = torch.nn.functional.pad(x, (pad,) * 4, mode="replicate")
    shifts = set()
    for i in range(len(x)):
        found = [(dy, dx) for dy in range(2 * pad + 1) for dx in range(2 * pad + 1)
                 if torch.equal(out[i], padded[i, :, dy:dy + 20, dx:dx + 20])]  # an exact crop
        assert found, f"image {i} is not a shift of at most {pad} pixels"
        shifts.add(found[0])
    assert len(shifts) > 1  # random, per image
    assert torch.equal(RandomShiftsAug(pad=0)(x), x)


def test_random_shifts_are_drqv2s_grid_sample_shifts_up_to_its_rounding() -> None:
    from benchmarks.drqv2 import random_shifts

    x = torch.randint(0, 256, (32, 9, 84, 84), dtype=torch.uint8)
    torch.manual_seed(7)
    ours = RandomShiftsAug(pad=4)(x)
    torch.manual_seed(7)  # the same draws: each image gets DrQ-v2's shift
    theirs = random_shifts(x.float(), 4)
    assert (ours - theirs).abs().max() < 0.01 and (ours - theirs).abs().mean() < 1e-3


def test_random_shifts_take_uint8_and_non_square_images() -> None:
    x = torch.randint(0, 256, (2, 9, 84, 60), dtype=torch.uint8)
    assert RandomShiftsAug(pad=4)(x).shape == (2, 9, 84, 60)
    with pytest.raises(UserError, match="image"):
        RandomShiftsAug(pad=4, in_shape=(5,))


def test_encoder_output_size_for_a_frame_stack() -> None:
    encoder = Encoder((9, 84, 84))
    out = encoder(torch.randint(0, 256, (2, 9, 84, 84), dtype=torch.uint8))
    assert out.shape == (2, 32 * 35 * 35) == (2, encoder.repr_dim)
    assert len([m for m in encoder.modules() if isinstance(m, torch.nn.Conv2d)]) == 4
    with pytest.raises(UserError, match="Eyes=Identity"):
        Encoder((5,))


def test_nature_cnn_body_and_head() -> None:
    body = NatureCNN((4, 84, 84))
    assert body(torch.zeros(2, 4, 84, 84, dtype=torch.uint8)).shape == (2, 64, 7, 7)
    head = instantiate("NatureCNN", {}, (4, 84, 84), (6,), "Model")
    assert head(torch.zeros(3, 4, 84, 84)).shape == (3, 6)


def test_blocks_are_registered_short_names() -> None:
    assert resolve("Encoder") is Encoder and resolve("DrQEncoder") is Encoder
    assert resolve("RandomShiftsAug") is RandomShiftsAug
    assert resolve("NatureCNN") is NatureCNN and resolve("AtariCNN") is NatureCNN
    assert resolve("DrQV2Agent") is DrQV2Agent


def test_schedules() -> None:
    assert Schedule(0.2)(10**6) == 0.2
    linear = Schedule("linear(1.0,0.1,500000)")
    assert [linear(s) for s in (0, 250_000, 500_000, 10**7)] == pytest.approx([1.0, 0.55, 0.1, 0.1])
    step = Schedule("step_linear(1.0,0.5,100,0.1,100)")
    assert [step(s) for s in (0, 100, 150, 1000)] == pytest.approx([1.0, 0.5, 0.3, 0.1])
    with pytest.raises(UserError, match="schedule"):
        Schedule("cosine(1,2)")


# -- the agent -----------------------------------------------------------------------------------------


def test_recipes_resolve_with_drqv2_defaults() -> None:
    pixels = resolve_config((), {"task": "drqv2"})
    assert (pixels.Agent, pixels.Env, pixels.env.task, pixels.Eyes, pixels.Aug) == \
        ("DrQV2Agent", "DMC", "cheetah_run", "Encoder", "RandomShiftsAug")
    assert (pixels.lr, pixels.batch_size, pixels.agent.stddev_schedule) == (1e-4, 256, "linear(1.0,0.1,500000)")
    states = resolve_config((), {"task": "drqv2_states"})
    assert (states.env.pixels, states.Eyes, states.Aug, states.agent.augment) == (False, "Identity", None, False)
    humanoid = resolve_config((), {"task": "humanoid_from_images"})
    assert (humanoid.env.task, humanoid.lr, humanoid.agent.feature_dim, humanoid.train_steps) == \
        ("humanoid_run", 8e-5, 100, 15_050_000)  # num_train_frames 30.1M
    assert humanoid.agent.stddev_schedule == "linear(1.0,0.1,2000000)" and humanoid.env.pixels is True


def test_pendulum_actions_in_bounds_and_learning_step_from_states() -> None:
    torch.manual_seed(0)
    env = Classic("Pendulum-v1")
    config = resolve_config((), {"task": "drqv2_states", "Env": "Classic", "env": {"task": "Pendulum-v1"},
                                 **FAST})
    agent = _agent(env.task_spec, config, learn_start=50, num_expl_steps=50)
    assert agent.aug is None and not agent.pixels and agent.repr_dim == 3
    replay = Replay(None, 1000, (3,), np.float32, (1,), np.float32)
    obs, _ = env.reset(seed=0)
    replay.start(obs)
    logs = []
    for step in range(120):
        action = agent.act(obs, step)
        assert action.dtype == np.float32 and action.shape == (1,) and -2.0 <= action[0] <= 2.0
        obs, reward, terminated, truncated, _ = env.step(action)
        replay.add(action, reward, obs, terminated, truncated)
        logs.append(agent.update(replay, step))
    assert all(log == {} for log in logs[:50]) and all(log == {} for log in logs[51::2])
    learned = [log for log in logs if log]
    assert len(learned) == 35 and agent.updates == 35
    assert set(learned[-1]) >= {"critic_loss", "actor_loss", "critic_q", "stddev"}
    assert all(np.isfinite(v) for log in learned for v in log.values())
    # exploration noise and the mean both span the whole [-2, 2] range once scaled
    big = np.array([agent.act(np.array([1.0, 0.0, 8.0], np.float32), 10**7, eval_mode=False)
                    for _ in range(50)])
    assert np.all(np.abs(big) <= 2.0)
    eval_action = agent.act(obs, 0, eval_mode=True)
    assert np.array_equal(eval_action, agent.act(obs, 0, eval_mode=True))  # the mean: deterministic


@pytest.mark.parametrize("seed", [0, 1])
def test_critic_learns_its_n_step_targets(seed: int) -> None:
    """Learning, not just finite losses: 100 updates on one batch of real Pendulum transitions cut the
    critic's TD error several-fold (measured: 4.5-6x for seeds 0-2)."""
    torch.manual_seed(seed)
    env = Classic("Pendulum-v1")
    config = resolve_config((), {"task": "drqv2_states", "Env": "Classic", "env": {"task": "Pendulum-v1"},
                                 **FAST, "lr": 1e-3})
    agent = _agent(env.task_spec, config, learn_start=50, num_expl_steps=50)
    replay = Replay(None, 1000, (3,), np.float32, (1,), np.float32)
    obs, _ = env.reset(seed=seed)
    replay.start(obs)
    for step in range(120):
        action = agent.act(obs, step)
        obs, reward, terminated, truncated, _ = env.step(action)
        replay.add(action, reward, obs, terminated, truncated)
    batch = replay.sample(64, 3, 0.99)
    losses = [agent.learn(batch, 120)["critic_loss"] for _ in range(100)]
    assert losses[-1] < losses[0] / 3, (losses[0], losses[-1])


def test_discrete_task_is_refused() -> None:
    env = Classic("CartPole-v1")
    config = resolve_config((), {"task": "drqv2_states", "Env": "Classic", "env": {"task": "CartPole-v1"}})
    with pytest.raises(UserError, match="continuous actions"):
        _agent(env.task_spec, config)


def test_image_encoder_on_states_is_a_clear_error() -> None:
    env = Classic("Pendulum-v1")
    config = resolve_config((), {"task": "drqv2", "Env": "Classic", "env": {"task": "Pendulum-v1"}, **FAST})
    with pytest.raises(UserError, match="drqv2_states"):
        _agent(env.task_spec, config)


def test_pixel_update_on_real_dmc_frames(tmp_path) -> None:
    from ML.envs.dmc import DMC

    torch.manual_seed(0)
    try:
        env = DMC("cartpole_balance", pixels=True, fast_render=True)
    except UserError as e:  # no OpenGL backend on this machine
        pytest.skip(str(e))
    spec = env.task_spec
    config = resolve_config((), {"task": "drqv2", "device": "cpu", "batch_size": 4, **{
        k: v for k, v in FAST.items() if k != "batch_size"}})
    agent = _agent(spec, config, learn_start=0, num_expl_steps=3, update_every=1)
    assert isinstance(agent.encoder, Encoder) and isinstance(agent.aug, RandomShiftsAug)
    replay = Replay(tmp_path / "replay.h5", 100, spec.obs_shape, np.uint8, spec.action_shape, np.float32)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (9, 84, 84) and obs.dtype == np.uint8
    replay.start(obs)
    for step in range(6):
        action = agent.act(obs, step)
        assert action.shape == spec.action_shape and np.all(np.abs(action) <= 1.0)
        obs, reward, terminated, truncated, _ = env.step(action)
        replay.add(action, reward, obs, terminated, truncated)
    encoder_before = [p.detach().clone() for p in agent.encoder.parameters()]
    target_before = [p.detach().clone() for p in agent.critic_target.parameters()]
    batch = replay.sample(4, 3, 0.99)
    assert batch["obs"].shape == (4, 9, 84, 84) and batch["obs"].dtype == torch.uint8
    losses = agent.learn(batch, 6)
    assert set(losses) >= {"critic_loss", "actor_loss", "critic_q", "stddev"}
    assert all(np.isfinite(v) for v in losses.values())
    assert any(not torch.equal(a, b) for a, b in zip(encoder_before, agent.encoder.parameters(), strict=True))
    assert any(not torch.equal(a, b) for a, b in zip(target_before, agent.critic_target.parameters(),
                                                      strict=True))
    replay.close(keep=False)
    env.close()
    # the whole agent pickles (agent.pt) and acts the same after loading
    torch.save(agent, tmp_path / "agent.pt")
    loaded = torch.load(tmp_path / "agent.pt", weights_only=False)
    assert np.array_equal(loaded.act(obs, 10**6, eval_mode=True), agent.act(obs, 10**6, eval_mode=True))


def test_user_eyes_and_no_augmentation() -> None:
    spec = type("Spec", (), {"task": "fake", "discrete": False, "obs_shape": (3, 32, 32), "action_shape": (2,),
                             "action_low": -1.0, "action_high": 1.0})()
    config = resolve_config((), {"task": "drqv2", "Eyes": "CNN", "eyes": {"depth": 2, "stride": 2},
                                 "device": "cpu", **FAST})
    agent = _agent(spec, config, augment=False)
    assert agent.aug is None and agent.repr_dim == 32 * 16 * 16
    assert agent.act(np.zeros((3, 32, 32), np.uint8), 10**6).shape == (2,)


def test_launch_from_states_on_pendulum_end_to_end(workdir) -> None:
    agent = ML.launch(task="drqv2_states", Env="Classic", env={"task": "Pendulum-v1"}, train_steps=1500,
                      evaluate_per_steps=750, evaluate_episodes=2, progress=False,
                      **{**FAST, "agent.learn_start": 300, "agent.num_expl_steps": 300})
    assert isinstance(agent, DrQV2Agent) and agent.updates == 600
    run = workdir / "results" / "Exp" / "runs" / "drqv2_states" / "Classic" / "Pendulum-v1" / "0"
    rows = list(csv.DictReader(io.StringIO((run / "eval.csv").read_text())))
    assert [int(r["step"]) for r in rows] == [0, 750, 1500]
    assert all(np.isfinite(float(r["score"])) for r in rows)
    train = list(csv.DictReader(io.StringIO((run / "train.csv").read_text())))
    assert "critic_loss" in train[-1] and np.isfinite(float(train[-1]["critic_loss"]))
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "complete"
    assert (run / "agent.pt").is_file() and (run / "replay.h5").is_file()


def test_cli_runs_and_a_run_resumes_from_its_checkpoint(workdir) -> None:
    args = ["task=drqv2_states", "Env=Classic", "env={task: Pendulum-v1}", "train_steps=400",
            "evaluate_per_steps=200", "evaluate_episodes=1", "agent.hidden_dim=32", "agent.learn_start=100",
            "agent.num_expl_steps=100", "batch_size=16", "threads=1", "seed=3", "progress=false"]
    run_ml(*args, cwd=workdir)
    run = workdir / "results" / "Exp" / "runs" / "drqv2_states" / "Classic" / "Pendulum-v1" / "3"
    assert [r["step"] for r in csv.DictReader(io.StringIO((run / "eval.csv").read_text()))] == ["0", "200", "400"]
    assert json.loads((run / "run.json").read_text())["env"]["malloc"]["tuned"] is True  # glibc: ML.allocator
    resumed = [a if not a.startswith("train_steps") else "train_steps=600" for a in args]
    agent = ML.launch(*resumed, "load=true")
    assert agent.updates == 150 + 100  # (400 - 100) / 2 before, 200 / 2 after
    steps = [r["step"] for r in csv.DictReader(io.StringIO((run / "eval.csv").read_text()))]
    assert steps == ["0", "200", "400", "600"]


def test_one_update_matches_a_plain_reimplementation_of_drqv2s_update() -> None:
    """The engine's update (fused Adam, frozen critic in the actor step, one-call soft update) computes
    DrQ-v2's losses and gradients: benchmarks/drqv2.py's Reference is the reference update written out."""
    from benchmarks.drqv2 import Reference, build

    agent, batch, lr = build(batch_size=8)
    reference = Reference(agent, lr)
    torch.manual_seed(123)
    ours = agent.learn(batch, step=10_000)
    engine_critic = [p.grad.clone() for p in (*agent.encoder.parameters(), *agent.critic.parameters())]
    engine_actor = [p.grad.clone() for p in agent.actor.parameters()]
    torch.manual_seed(123)  # the same augmentation shifts and action noise, drawn in the same order
    theirs = reference.update(batch, step=10_000, keep_grads=True)
    assert ours["critic_loss"] == pytest.approx(theirs["critic_loss"], rel=1e-5)
    assert ours["actor_loss"] == pytest.approx(theirs["actor_loss"], rel=1e-5)
    for mine, ref in ((engine_critic, reference.critic_grads), (engine_actor, reference.actor_grads)):
        assert len(mine) == len(ref)
        for a, b in zip(mine, ref, strict=True):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
    for a, b in zip(agent.critic_target.parameters(), reference.critic_target.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)  # soft update of the same weights
    assert not torch.equal(next(agent.critic_target.parameters()), next(reference.critic.parameters()))


def test_accelerate_runs_the_encoder_in_bf16_only_where_the_cpu_has_it() -> None:
    from benchmarks.drqv2 import build
    from ML.accelerate import cpu_has_native_bf16

    plain, batch, _ = build(batch_size=4)
    fast = build(batch_size=4, accelerate=True)[0]
    assert plain.accel.dtype is None and not plain.accel.enabled
    assert fast.accel.decision["amp"] == ("bfloat16" if cpu_has_native_bf16() else None)
    torch.manual_seed(0)
    exact = plain.learn(batch, step=10_000)
    torch.manual_seed(0)
    approx = fast.learn(batch, step=10_000)  # the same weights (seeded build) and draws: bf16 rounding only
    assert approx["critic_loss"] == pytest.approx(exact["critic_loss"], rel=0.05)
    assert np.isfinite(approx["actor_loss"])


def test_the_benchmarks_bare_replay_samples_drqv2s_n_step_targets() -> None:
    """benchmarks/drqv2.py --loop's bare replay: drqv2's n-step reward and discount, next_obs n steps on, and
    never a chain across an episode's end."""
    from benchmarks.drqv2 import BareReplay

    gamma, n = 0.9, 3
    replay = BareReplay(32, (1, 2, 2), n_step=n, gamma=gamma, seed=0)
    frames = iter(range(1, 100))
    for length, end_discount in ((6, 0.0), (5, 1.0)):  # the first episode terminates, the second runs on
        replay.start(np.full((1, 2, 2), next(frames), np.uint8))
        for t in range(length):
            replay.add(np.array([0.1]), reward=float(t + 1), discount=end_discount if t == length - 1 else 1.0,
                       next_obs=np.full((1, 2, 2), next(frames), np.uint8))
    batch = replay.sample(256)
    first = batch["obs"][:, 0, 0, 0].numpy().astype(int)
    assert set(first) == {1, 2, 3, 4, 8, 9, 10}  # the starts with 3 steps left in their episode
    r = {1: 1, 2: 2, 3: 3, 4: 4, 8: 1, 9: 2, 10: 3}  # the reward of the step leaving each frame
    for i, f in enumerate(first):
        assert batch["next_obs"][i, 0, 0, 0] == f + n
        assert batch["reward"][i].item() == pytest.approx(r[f] + gamma * (r[f] + 1) + gamma**2 * (r[f] + 2))
        terminal = f == 4  # its third step ends episode 1 with discount 0
        assert batch["discount"][i].item() == pytest.approx(0.0 if terminal else gamma**n)
