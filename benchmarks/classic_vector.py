"""Would vectorised collection pay for DQN on classic control? N envs in gymnasium's SyncVectorEnv vs one.

    .venv/bin/python benchmarks/classic_vector.py [--env CartPole-v1] [--steps 20000] [--envs 4 8]
                                                  [--repeats 3] [--threads 1]

Both sides use the real parts of a ``task=dqn`` run: the recipe's ``DQNAgent`` (network, batch, n-step
sampling), ``Classic`` envs and RAM ``Replay``s (one per env, sampled as one through ``ML.replay_streams.Streams``,
as a vector run would), epsilon at its final value. ``one env``: ``agent.act`` on one observation, one
``env.step``, one ``replay.add`` a step.
``N envs``: one ``agent.act_batch`` for N observations and one ``SyncVectorEnv.step`` (same-step autoreset),
N transitions into the replays. Each side is timed twice over ``--steps`` environment steps: collection
alone, and training (collection plus the recipe's gradient updates: one every ``update_every`` env steps).
Prints env steps/s of both sides, for both, and the ratios N envs / one env (> 1: vectorising pays),
each the median of ``--repeats`` rounds with the sides interleaved.
"""

from __future__ import annotations

import argparse
import statistics
import time

import gymnasium
import numpy as np
import torch

from ML.agents.dqn import DQNAgent
from ML.checkpoints import agent_settings
from ML.envs.classic import Classic
from ML.hyperparams import Config, instantiate, resolve_config
from ML.replay import Replay
from ML.replay_streams import Streams


def _agent(env_id: str, env: Classic) -> tuple[DQNAgent, Config]:
    config = resolve_config((), {"task": "dqn", "env.task": env_id})
    agent = instantiate(config.Agent, {**config.agent,
                                       "spec": env.task_spec, "settings": agent_settings(config)}, label="Agent")
    return agent, config


def _replay(env: Classic, capacity: int) -> Replay:
    return Replay(None, capacity, env.task_spec.obs_shape, np.float32, (), np.int64)


def one_env(env_id: str, steps: int, train: bool) -> float:
    """Env steps/s of one env: act, step, add (and an update every ``update_every`` steps when ``train``)."""
    env = Classic(env_id)
    agent, _ = _agent(env_id, env)
    replay, late = _replay(env, steps + 1000), agent.learn_start + agent.eps_decay_steps  # epsilon at its end
    obs, _ = env.reset(seed=0)
    replay.start(obs)
    for _ in range(agent.batch_size + agent.n_step):  # enough transitions to sample from
        obs = _one(env, agent, replay, obs, late)
    began = time.perf_counter()
    for step in range(late, late + steps):
        obs = _one(env, agent, replay, obs, step)
        if train:
            agent.update(replay, step)
    return steps / (time.perf_counter() - began)


def _one(env: Classic, agent: DQNAgent, replay: Replay, obs: np.ndarray, step: int) -> np.ndarray:
    action = agent.act(obs, step)
    obs, reward, terminated, truncated, _ = env.step(action)
    replay.add(action, reward, obs, terminated, truncated)
    if terminated or truncated:
        obs, _ = env.reset()
        replay.start(obs)
    return obs


def n_envs(env_id: str, n: int, steps: int, train: bool) -> float:
    """Env steps/s of ``n`` envs in a SyncVectorEnv with one batched act a vector step."""
    vector = gymnasium.vector.SyncVectorEnv([lambda: Classic(env_id)] * n,
                                            autoreset_mode=gymnasium.vector.AutoresetMode.SAME_STEP)
    spec_env = Classic(env_id)
    agent, _ = _agent(env_id, spec_env)
    replays = Streams(n, None, steps // n + 1000, spec_env.task_spec.obs_shape, np.float32, (), np.int64)
    late = agent.learn_start + agent.eps_decay_steps
    obs, _ = vector.reset(seed=list(range(n)))
    replays.start(obs)
    for _ in range(agent.batch_size + agent.n_step):
        obs = _vector(vector, agent, replays, obs, late)
    began, step = time.perf_counter(), late
    for _ in range(steps // n):
        obs = _vector(vector, agent, replays, obs, step)
        for _ in range(n):  # the same updates per env step as one env: one every update_every env steps
            if train:
                agent.update(replays, step)
            step += 1
    return (steps // n) * n / (time.perf_counter() - began)


def _vector(vector: gymnasium.vector.SyncVectorEnv, agent: DQNAgent, replays: Streams, obs: np.ndarray,
            step: int) -> np.ndarray:
    actions = agent.act_batch(obs, step)
    obs, reward, terminated, truncated, info = vector.step(actions)
    for i, replay in enumerate(replays.streams):
        ended = terminated[i] or truncated[i]
        replay.add(actions[i], reward[i], info["final_obs"][i] if ended else obs[i], terminated[i], truncated[i])
        if ended:
            replay.start(obs[i])
    return obs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="CartPole-v1")
    parser.add_argument("--steps", type=int, default=20_000)
    parser.add_argument("--envs", type=int, nargs="+", default=[4, 8])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"{args.env}, {args.steps} env steps a side, median of {args.repeats} interleaved rounds, "
          f"{args.threads} thread(s):")
    for train in (False, True):
        rates: dict[int, list[float]] = {1: [], **{n: [] for n in args.envs}}
        for _ in range(args.repeats):
            rates[1].append(one_env(args.env, args.steps, train))
            for n in args.envs:
                rates[n].append(n_envs(args.env, n, args.steps, train))
        one = statistics.median(rates[1])
        what = "training (collection + updates)" if train else "collection only                "
        line = f"  {what}: one env {one:8.0f} steps/s"
        for n in args.envs:
            rate = statistics.median(rates[n])
            line += f"   {n} envs {rate:8.0f} steps/s ({rate / one:.2f}x)"
        print(line, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
