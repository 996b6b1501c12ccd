"""DQN, PPO and SAC against the peer users would pick instead: Stable-Baselines3 with rl-zoo3's tuned
hyperparameters.

    .venv/bin/pip install -e '.[bench]'          # stable-baselines3 (benchmarks only, never a run-time need)
    .venv/bin/python benchmarks/peer_sb3.py [--algo dqn|ppo|sac] [--env ID] [--seeds 0 1 2] [--threads 1|N|0]
                                            [--steps N] [--learning-starts N] [-- key=value ...]
    e.g. --algo ppo (CartPole-v1, 100k steps), --algo sac (Pendulum-v1, 20k steps),
         --algo sac --env Hopper-v5 --steps 3000 --learning-starts 1000 --seeds 0   (steps/s on MuJoCo)

Both sides run in this one process's run, seed by seed, alternating which goes first:
- ours: a whole ``ML task=<algo> env.task=<env> seed=<s>`` process (start-up, evaluations, replay.h5 for
  DQN and SAC, checkpoint, run.json: the run a user gets), timed from process start to exit;
  its final score is the last row of eval.csv (10 greedy / deterministic episodes).
- SB3: ``stable_baselines3.<ALGO>`` built with rl-zoo3's hyperparameters for the task (PPO: on
  ``make_vec_env(env, n_envs)``, linear schedules ``lin_*`` as rl-zoo3's ``linear_schedule``) and
  ``learn()``-ed for rl-zoo3's ``n_timesteps``, timed from construction to the end of ``learn()`` (its
  imports excluded); its final score is the mean of 10 deterministic episodes on seeded evaluation envs
  afterwards, from the same start states as our run's final evaluation (its reset seeds).
Prints each side's seconds per run (wall and CPU: on a machine shared with other work, CPU time is the
steadier of the two) and steps/s, the median final returns and the ratios SB3 time / ours.

rl-zoo3's hyperparameters are copied here (``ZOO``) rather than installed: the ``rl_zoo3`` package pulls
optuna, huggingface_hub, moviepy and more. Source: DLR-RM/rl-baselines3-zoo, ``hyperparams/dqn.yml``
(commit ce95481b041fe5314c1b2f1a53940d169b9253fc), entries ``CartPole-v1`` and ``Acrobot-v1``; rl-zoo3
trains them with one environment, no normalisation, and SB3's defaults for everything not listed
(``tau=1.0``, ``max_grad_norm=10``, ``exploration_initial_eps=1.0``, Huber loss, Adam).
``hyperparams/ppo.yml`` entry ``CartPole-v1`` and ``hyperparams/sac.yml`` entries ``Pendulum-v1`` and
``Hopper-v4`` (its ``mujoco-defaults``; run here on Hopper-v5) at commit
22e3ff2450fd92033f7f032915e1f64894a09584: SB3's defaults for everything not listed.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from timing import children_cpu

DQN_ZOO: dict[str, dict] = {
    "CartPole-v1": {"n_timesteps": 50_000, "learning_rate": 2.3e-3, "batch_size": 64, "buffer_size": 100_000,
                    "learning_starts": 1000, "gamma": 0.99, "target_update_interval": 10, "train_freq": 256,
                    "gradient_steps": 128, "exploration_fraction": 0.16, "exploration_final_eps": 0.04,
                    "policy_kwargs": {"net_arch": [256, 256]}},
    "Acrobot-v1": {"n_timesteps": 100_000, "learning_rate": 6.3e-4, "batch_size": 128, "buffer_size": 50_000,
                   "learning_starts": 0, "gamma": 0.99, "target_update_interval": 250, "train_freq": 4,
                   "gradient_steps": -1, "exploration_fraction": 0.12, "exploration_final_eps": 0.1,
                   "policy_kwargs": {"net_arch": [256, 256]}},
}
ZOO: dict[str, dict[str, dict]] = {
    "dqn": DQN_ZOO,
    "ppo": {"CartPole-v1": {"n_envs": 8, "n_timesteps": 100_000, "n_steps": 32, "batch_size": 256,
                            "gae_lambda": 0.8, "gamma": 0.98, "n_epochs": 20, "ent_coef": 0.0,
                            "learning_rate": "lin_1e-3", "clip_range": "lin_0.2"}},
    "sac": {"Pendulum-v1": {"n_timesteps": 20_000, "learning_rate": 1e-3},
            "Hopper-v5": {"n_timesteps": 1_000_000, "learning_starts": 10_000}},
}
INSTALL = ("benchmarks/peer_sb3.py needs Stable-Baselines3, which the engine never needs: "
           "pip install -e '.[bench]'  (or pip install stable-baselines3==2.9.2)")


def ours(algo: str, env_id: str, seed: int, threads: int, extra: list[str]
         ) -> tuple[float, float, float, int, int, int]:
    """(wall seconds, CPU seconds, final score, steps, index of the final evaluation, threads it ran) of one
    whole ``ML task=<algo>`` process."""
    with tempfile.TemporaryDirectory() as tmp:
        # threads 0: the user's default (threads=auto, which reads the machine's free cores)
        command = [sys.executable, "-m", "ML", f"task={algo}", f"env.task={env_id}", f"seed={seed}",
                   *([f"threads={threads}"] if threads else []), "progress=false", f"run_dir={tmp}", *extra]
        env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
        began, cpu = time.perf_counter(), children_cpu()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL,
                       env={**env, "OMP_NUM_THREADS": str(threads)} if threads else env)
        seconds, cpu = time.perf_counter() - began, children_cpu() - cpu
        rows = list(csv.DictReader((Path(tmp) / "eval.csv").open()))
        chosen = json.loads((Path(tmp) / "run.json").read_text())["threads"]["threads"]
    return seconds, cpu, float(rows[-1]["score"]), int(rows[-1]["step"]), len(rows) - 1, chosen


def _linear(text: str):
    """rl-zoo3's ``lin_<value>``: ``progress_remaining * value``."""
    initial = float(text.removeprefix("lin_"))
    return lambda progress_remaining: progress_remaining * initial


def sb3(algo: str, env_id: str, seed: int, budget: int | None = None, learning_starts: int | None = None
        ) -> tuple[float, float, Any, int]:
    """(wall seconds, CPU seconds, trained model, steps) of SB3's algorithm with rl-zoo3's hyperparameters."""
    import gymnasium
    import stable_baselines3

    settings = {k: _linear(v) if isinstance(v, str) and v.startswith("lin_") else v
                for k, v in ZOO[algo][env_id].items()}
    steps = settings.pop("n_timesteps")
    steps = steps if budget is None else budget
    if learning_starts is not None:
        settings["learning_starts"] = learning_starts
    n_envs = settings.pop("n_envs", 1)
    began, cpu = time.perf_counter(), time.process_time()
    if n_envs > 1:
        from stable_baselines3.common.env_util import make_vec_env

        env = make_vec_env(env_id, n_envs=n_envs, seed=seed)
    else:
        env = gymnasium.make(env_id)
    model = getattr(stable_baselines3, algo.upper())("MlpPolicy", env, seed=seed, device="cpu", verbose=0, **settings)
    model.learn(total_timesteps=steps)
    seconds, cpu = time.perf_counter() - began, time.process_time() - cpu
    return seconds, cpu, model, steps


def sb3_score(model: Any, env_id: str, seeds: list[int]) -> float:
    """The mean return of SB3's deterministic policy, an episode from each reset seed: our final evaluation's
    (``episode_seed(seed, 1, k, i)``), so both sides' final returns come from the same start states."""
    import gymnasium

    env, returns = gymnasium.make(env_id), []
    for episode_seed in seeds:
        obs, _ = env.reset(seed=episode_seed)
        done, total = False, 0.0
        while not done:
            action, _ = model.predict(obs, deterministic=True)
            discrete = isinstance(env.action_space, gymnasium.spaces.Discrete)
            obs, reward, terminated, truncated, _ = env.step(int(action) if discrete else action)
            total += float(reward)
            done = terminated or truncated
        returns.append(total)
    return float(np.mean(returns))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--algo", default="dqn", choices=sorted(ZOO))
    parser.add_argument("--env", default=None, help="a task rl-zoo3 tunes for the algorithm (default: its first)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads on both sides (default 1); 0: each side's own default, as a user runs "
                             "it (SB3: torch's, the physical cores; ours: threads=auto, from the free cores)")
    parser.add_argument("--steps", type=int, default=None,
                        help="both sides' budget (default: the recipe's for ours, rl-zoo3's n_timesteps for SB3)")
    parser.add_argument("--learning-starts", type=int, default=None,
                        help="SAC/DQN: both sides' random steps before learning (agent.learn_start; learning_starts)")
    parser.add_argument("ml_args", nargs="*", help="after --: extra key=value arguments for our side")
    args = parser.parse_args()
    args.env = args.env or next(iter(ZOO[args.algo]))
    if args.env not in ZOO[args.algo]:
        parser.error(f"--env {args.env}: rl-zoo3 settings here for {args.algo} are {', '.join(ZOO[args.algo])}")
    if args.steps is not None:
        args.ml_args = [f"train_steps={args.steps}", *args.ml_args]
    if args.learning_starts is not None:
        args.ml_args = [f"agent.learn_start={args.learning_starts}", *args.ml_args]
    try:
        import stable_baselines3  # noqa: F401
    except ImportError:
        print(INSTALL, file=sys.stderr)
        return 2
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from ML.collectors import episode_seed
    from ML.hyperparams import resolve_config

    episodes = int(resolve_config(argv=[f"task={args.algo}", f"env.task={args.env}", *args.ml_args]).evaluate_episodes)
    results: dict[str, list[tuple[float, float, float, int]]] = {"ours": [], "sb3": []}
    for k, seed in enumerate(args.seeds):  # alternate which goes first, so slow spells of a shared machine even out
        order = ("ours", "sb3") if k % 2 == 0 else ("sb3", "ours")
        for side in order:
            if side == "ours":
                wall, cpu, score, steps, final, chosen = ours(args.algo, args.env, seed, args.threads, args.ml_args)
                results["ours"].append((wall, cpu, score, steps))
            else:
                sb3_wall, sb3_cpu, model, sb3_steps = sb3(args.algo, args.env, seed, args.steps, args.learning_starts)
        seeds = [episode_seed(seed, 1, final, i) for i in range(episodes)]  # our final evaluation's start states
        results["sb3"].append((sb3_wall, sb3_cpu, sb3_score(model, args.env, seeds), sb3_steps))
        (a, ca, fa, _), (b, cb, fb, _) = results["ours"][-1], results["sb3"][-1]
        print(f"seed {seed}: ours {a:7.1f} s ({ca:7.1f} s CPU, final {fa:7.1f})   SB3 {b:7.1f} s ({cb:7.1f} s CPU, "
              f"final {fb:7.1f})   SB3 / ours {b / a:.2f} wall, {cb / ca:.2f} CPU   threads: ours {chosen}, SB3 "
              f"{torch.get_num_threads()}", flush=True)
    print(f"{args.algo.upper()} {args.env}, seeds {args.seeds}, threads {args.threads or 'each side default'}, "
          f"load average at the end {os.getloadavg()[0]:.1f}:")
    for side, label in (("ours", "ours (whole ML process)      "), ("sb3", "SB3 + rl-zoo3 (build+learn)  ")):
        seconds = statistics.mean(r[0] for r in results[side])
        steps = results[side][0][3]
        print(f"  {label}: {seconds:7.1f} s a run ({statistics.mean(r[1] for r in results[side]):7.1f} s CPU), "
              f"{steps / seconds:7.1f} steps/s ({steps} steps), "
              f"median final return {statistics.median(r[2] for r in results[side]):.1f} "
              f"(per seed {' / '.join(f'{r[2]:.1f}' for r in results[side])})")
    for i, what in ((0, "wall"), (1, "CPU ")):
        ratio = sum(r[i] for r in results["sb3"]) / sum(r[i] for r in results["ours"])
        target = "   (target >= 1.5)" if what == "wall" else ""
        print(f"  speed ratio (SB3 / ours, {what} time)  : {ratio:7.2f}{target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
