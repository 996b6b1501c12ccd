"""SAC steps/s against CleanRL's single-file ``sac_continuous_action.py`` (vendored under ``benchmarks/peers/``
with its licence and source commit; run in this venv, which has what it needs once the ``bench`` extra is in).

    .venv/bin/pip install -e '.[bench]'          # stable-baselines3: CleanRL's replay buffer is SB3's
    .venv/bin/python benchmarks/peer_cleanrl.py [--env Hopper-v5] [--steps 3000] [--learning-starts 1000]
                                                [--seeds 0] [--threads 1] [-- key=value ...]

Both sides in this one run, seed by seed, alternating which goes first, each a whole process timed from start
to exit (wall and CPU): ours ``ML task=sac env.task=<env> train_steps=<steps> agent.learn_start=<n>`` (start-up,
an evaluation of 10 episodes at step 0 and at the end, replay.h5, checkpoint: ``peer_sb3.ours``), CleanRL's
script with ``--total-timesteps <steps> --learning-starts <n>`` and its defaults otherwise (256x256 networks,
batch 256, one critic update a step, two actor and α updates every second step, no evaluation). The same
number of env steps and of critic updates on both sides; the settings that do not change the work (learning
rates) are each side's own. Prints both sides' seconds and steps/s and the ratio CleanRL / ours.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from peer_sb3 import ours
from timing import children_cpu

SCRIPT = Path(__file__).resolve().parent / "peers" / "cleanrl_sac_continuous_action.py"


def cleanrl(env_id: str, seed: int, steps: int, learning_starts: int, threads: int) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one whole CleanRL process (its tensorboard-free copy: no files written
    but for the working directory it runs in)."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        command = [sys.executable, str(SCRIPT), "--env-id", env_id, "--seed", str(seed), "--total-timesteps",
                   str(steps), "--learning-starts", str(learning_starts), "--cuda", "false"]
        began, cpu = time.perf_counter(), children_cpu()
        subprocess.run(command, check=True, cwd=tmp, stdout=subprocess.DEVNULL,
                       env={**os.environ, "OMP_NUM_THREADS": str(threads)})
        return time.perf_counter() - began, children_cpu() - cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="Hopper-v5")
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--learning-starts", type=int, default=1000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("ml_args", nargs="*", help="after --: extra key=value arguments for our side")
    args = parser.parse_args()
    try:
        import stable_baselines3  # noqa: F401
    except ImportError:
        print("benchmarks/peer_cleanrl.py needs stable-baselines3 (CleanRL's replay buffer): "
              "pip install -e '.[bench]'", file=sys.stderr)
        return 2
    extra = [f"train_steps={args.steps}", f"agent.learn_start={args.learning_starts}", *args.ml_args]
    results: dict[str, list[tuple[float, float]]] = {"ours": [], "cleanrl": []}
    for k, seed in enumerate(args.seeds):
        for side in (("ours", "cleanrl") if k % 2 == 0 else ("cleanrl", "ours")):
            if side == "ours":
                results[side].append(ours("sac", args.env, seed, args.threads, extra)[:2])
            else:
                results[side].append(cleanrl(args.env, seed, args.steps, args.learning_starts, args.threads))
        (a, ca), (b, cb) = results["ours"][-1], results["cleanrl"][-1]
        print(f"seed {seed}: ours {a:6.1f} s ({ca:6.1f} s CPU)   CleanRL {b:6.1f} s ({cb:6.1f} s CPU)   "
              f"CleanRL / ours {b / a:.2f} wall, {cb / ca:.2f} CPU", flush=True)
    print(f"SAC {args.env}, {args.steps} steps ({args.learning_starts} random first), seeds {args.seeds}, "
          f"{args.threads} thread(s), load average at the end {os.getloadavg()[0]:.1f}:")
    for side, label in (("ours", "ours (whole ML process)"), ("cleanrl", "CleanRL sac_continuous_action")):
        wall = statistics.mean(r[0] for r in results[side])
        cpu = statistics.mean(r[1] for r in results[side])
        print(f"  {label:31s}: {wall:7.1f} s a run ({cpu:6.1f} s CPU), {args.steps / wall:6.1f} steps/s wall, "
              f"{args.steps / cpu:6.1f} steps/s CPU")
    for i, what in ((0, "wall"), (1, "CPU ")):
        ratio = sum(r[i] for r in results["cleanrl"]) / sum(r[i] for r in results["ours"])
        print(f"  speed ratio (CleanRL / ours, {what} time): {ratio:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
