"""``env_process=true``: the training env in a spawned process (real gymnasium and dm_control envs), stepping
while the agent updates, in DrQ-v2's loop order."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import numpy as np
import pytest

from ML.envs.classic import Classic
from ML.envs.process import EnvProcess
from ML.errors import UserError
from ML.hyperparams import resolve_config


def test_a_dmc_env_in_its_process_renders_and_steps_as_the_local_one() -> None:
    from ML.envs.dmc import DMC

    args = {"task": "cartpole_balance", "seed": 3, "size": 24, "fast_render": True}
    local, remote = DMC(**args), EnvProcess(DMC, args)
    try:
        assert remote.task_spec == local.task_spec and remote.observation_space == local.observation_space
        first, _ = local.reset(seed=5)
        np.testing.assert_array_equal(remote.reset(seed=5)[0], first)
        for action in np.random.default_rng(0).uniform(-1, 1, (12, 1)):
            remote.send(action)  # returns at once: the child steps and renders
            assert remote.pending
            got, want = remote.recv(), local.step(action)
            np.testing.assert_array_equal(got[0], want[0])
            assert got[1:] == want[1:]
    finally:
        local.close()
        remote.close()


def test_its_errors_reach_the_parent_and_a_dead_child_is_named() -> None:
    with pytest.raises(UserError, match="unknown gymnasium environment"):
        EnvProcess(Classic, {"task": "NoSuchTask-v0"})

    class Local(Classic):  # not importable by name in another interpreter
        pass

    with pytest.raises(UserError, match="env_process=true builds the env in another process, which must import"):
        EnvProcess(Local, {})
    env = EnvProcess(Classic, {"task": "CartPole-v1", "seed": 0})
    try:
        env.reset(seed=0)
        with pytest.raises(Exception, match="invalid|Discrete|contain"):  # gymnasium's own check, raised here
            env.step(7)
        env.reset(seed=0)  # the child lives on after an env error
        os.kill(env.pid, signal.SIGKILL)
        with pytest.raises(RuntimeError, match="the env process died"):
            env.step(0)
    finally:
        env.close()


class Counting:
    """An agent of the driver's protocol (random actions) that records the replay's size at each update."""

    def __init__(self, space) -> None:
        self.space, self.seen = space, []

    def act(self, obs, step, eval_mode=False):
        return self.space.sample()

    def update(self, replay, step):
        self.seen.append(len(replay))
        return {}


@pytest.mark.parametrize("process", [False, True])
def test_the_update_runs_before_the_steps_transition_with_a_process(workdir: Path, process: bool) -> None:
    """DrQ-v2's train.py order with env_process=true (act, update, env step), the engine's otherwise (act, env
    step, update); the same transitions are stored either way."""
    from ML.drivers.interactive import Interactive

    config = resolve_config(argv=["task=drqv2_states", "Env=Classic", "env={task: Pendulum-v1}",
                                  f"env_process={str(process).lower()}", "replay.capacity=1000"])
    driver = Interactive(config)
    driver.open(workdir, False)
    try:
        assert isinstance(driver.collector.env, EnvProcess) == process
        agent = Counting(driver.collector.env.action_space)
        agent.space.seed(0)
        for step in range(5):
            driver.step(agent, step)
        assert agent.seen == ([0, 1, 2, 3, 4] if process else [1, 2, 3, 4, 5])
        assert len(driver.collector.replay) == 5
    finally:
        driver.close(keep=False)


def test_the_drqv2_recipe_steps_its_env_in_a_process_and_the_vector_path_refuses_it(workdir: Path) -> None:
    assert resolve_config(argv=["task=drqv2"]).env_process is True
    assert resolve_config(argv=["task=dqn"]).env_process is False
    from ML.drivers.interactive import Interactive

    config = resolve_config(argv=["task=dqn_atari", "env.num_envs=2", "env_process=true"])
    with pytest.raises(UserError, match="drop env_process=true"):
        Interactive(config)


def test_a_run_py_without_a_main_guard_trains_once(tmp_path: Path) -> None:
    """The child is a fresh ``python -m ML.envs.process``, not a multiprocessing spawn, which would import the
    user's script again (and train again, or fail)."""
    import subprocess
    import sys

    (tmp_path / "Run.py").write_text(
        "import ML\n"
        "ML.launch(task='drqv2_states', Env='Classic', env={'task': 'Pendulum-v1'}, train_steps=30,\n"
        "          evaluate_per_steps=0, evaluate_episodes=0, progress=False, save=False, device='cpu',\n"
        "          **{'agent.learn_start': 10, 'agent.num_expl_steps': 10, 'batch_size': 8})\n"
        "print('trained')\n")
    out = subprocess.run([sys.executable, "Run.py"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("trained") == 1
    config = next(tmp_path.glob("results/*/runs/drqv2_states/Classic/Pendulum-v1/0/run.json")).read_text()
    assert '"env_process": true' in config
