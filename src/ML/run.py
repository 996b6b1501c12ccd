"""The run: resolve the config, build driver and agent, then train/evaluate/checkpoint on schedule.

Data flows one way: config → driver + agent → rows → eval.csv / train.csv / agent.pt / run.json.
"""

from __future__ import annotations

import random
import signal
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ML import checkpoints, tracking
from ML.drivers import make_driver
from ML.errors import UserError
from ML.hyperparams import Config, instantiate, resolve_config
from ML.logs import CSVLog, Progress
from ML.runinfo import RunInfo, command_line, config_hash, now


def _script_argv() -> list[str]:
    """``python Run.py key=value``: the script's arguments, unless running inside a notebook or REPL."""
    if "ipykernel" in sys.modules or hasattr(sys, "ps1"):
        return []
    return sys.argv[1:]


def launch(*args: Any, **kwargs: Any) -> Any:
    """Train and return the agent. Priority: command line > code (these arguments) > recipe."""
    return train(resolve_config(args, kwargs, _script_argv()), command_line())


def identity(config: Config, spec: Any) -> dict[str, Any]:
    task = config.get("task")
    recipe = Path(str(task)).stem if task else "custom"
    return {"experiment": str(config.experiment), "recipe": recipe, "suite": spec.suite, "task": spec.task,
            "seed": int(config.seed)}


def run_directory(config: Config, ident: dict[str, Any]) -> Path:
    if config.get("run_dir"):
        return Path(config.run_dir)
    return (Path(config.results) / ident["experiment"] / "runs" / ident["recipe"] / ident["suite"]
            / ident["task"] / str(ident["seed"]))


def default_agent(spec: Any) -> str:
    """The agent when none is named (``ML Dataset=CIFAR10 Model=Run.model``): by the kind of task."""
    if spec.num_classes:
        return "ClassifierAgent"
    if spec.discrete:
        return "DQNAgent"
    raise UserError(f"no Agent for {spec.suite} task {spec.task} (continuous actions): set Agent=... or a recipe")


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


class _Stop(Exception):
    """SIGTERM (a scheduler preempting the job): checkpoint at the next step boundary, then exit."""


class _StopFlag:
    """Set by SIGTERM; the loop checks it between steps so no write is cut in half."""

    def __init__(self) -> None:
        self.raised = False
        self.previous: Any = None

    def __call__(self, signum: int, frame: Any) -> None:
        self.raised = True

    def __enter__(self) -> _StopFlag:
        try:
            self.previous = signal.signal(signal.SIGTERM, self)
        except ValueError:  # not the main thread: leave signals alone
            self.previous = None
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.previous is not None:
            signal.signal(signal.SIGTERM, self.previous)


RUN_FILES = ("eval.csv", "train.csv", "replay.h5", "agent.pt", "run.json")


def _unfinished(ckpt_path: Path, config: Config) -> dict[str, Any] | None:
    """This run's own checkpoint, if it is unfinished and of the same config: the same command resumes it."""
    if not ckpt_path.is_file():
        return None
    payload = checkpoints.read(ckpt_path)
    state = payload["state"]
    if state.get("finished") or state.get("config_hash") != config_hash(config):
        return None
    return payload


def train(config: Config, command: list[str]) -> Any:
    from ML import distributed

    if distributed.world_size(config) > 1 and distributed.rank_world()[1] == 1:  # DDP: N processes
        return distributed.launch(config, command)
    if config.get("threads"):
        torch.set_num_threads(int(config.threads))
    seed_everything(int(config.seed))
    driver = make_driver(config)
    spec = driver.spec
    ident = identity(config, spec)
    run_dir = run_directory(config, ident)
    ckpt_path = run_dir / "agent.pt"

    payload, resume = None, False
    if config.get("load"):
        source = checkpoints.find(config.load, ckpt_path, config.results)
        payload = checkpoints.read(source)
        resume = source.resolve() == ckpt_path.resolve()
    elif config.get("resume"):
        payload = _unfinished(ckpt_path, config)
        resume = payload is not None
    if payload is None:
        agent = instantiate(config.Agent or default_agent(spec), {**config.agent, "spec": spec, "config": config},
                            label="Agent")
    else:
        agent = payload["agent"]
    state: dict[str, Any] = {"step": 0, "frame": 0, "time": 0.0}
    if resume:  # the same run continues: counters, RNGs, logs, replay
        state = payload["state"]
        checkpoints.restore_rng(payload["rng"])
        print(f"ML: resuming {run_dir} from step {state['step']}", flush=True)
    else:  # a fresh run never mixes with files of an earlier one
        kept = {"replay.h5"} if config.get("offline") or config.replay.load else set()  # learning from it
        for name in set(RUN_FILES) - kept:
            (run_dir / name).unlink(missing_ok=True)

    previous = RunInfo.read(run_dir / "run.json") if resume else None
    env_info = {**spec.info, "action_repeat": spec.action_repeat, **agent.describe()}  # agent: run-time choices
    info = RunInfo(run_dir / "run.json", ident, config, env_info, command, previous)
    eval_log = CSVLog(run_dir / "eval.csv", state.get("eval_rows"))
    train_log = CSVLog(run_dir / "train.csv", state.get("train_rows"))
    eval_log, train_log = tracking.track(config, info, eval_log, train_log)  # wandb=true (ML.tracking)
    driver.open(run_dir, resume, state.get("driver"))
    info.write()
    return _loop(config, driver, agent, info, eval_log, train_log, state, ckpt_path)


def _loop(config: Config, driver: Any, agent: Any, info: RunInfo, eval_log: CSVLog, train_log: CSVLog,
          state: dict[str, Any], ckpt_path: Path) -> Any:
    total = int(config.train_steps)
    every_eval = int(config.evaluate_per_steps) or total or 1
    every_log = max(int(config.log_per_steps), 1)
    every_save = int(config.save_per_steps or 0)
    step, frame = int(state["step"]), int(state["frame"])
    evaluated = {row["step"] for row in eval_log.rows}
    progress = Progress(total, step, config.progress, desc=f"{info.data['task']} seed {info.data['seed']}")
    clock = time.perf_counter() - float(state["time"])
    window: dict[str, list[float]] = state.get("window") or {}  # metrics since the last train.csv row
    window_start = (state.get("window_step", step), time.perf_counter())

    def elapsed() -> float:
        return time.perf_counter() - clock

    def checkpoint(finished: bool = False) -> None:
        train_log.flush()
        eval_log.flush()
        checkpoints.save(ckpt_path, agent, {
            "step": step, "frame": frame, "time": elapsed(), "driver": driver.state(), "finished": finished,
            "config_hash": info.data["config_hash"], "eval_rows": eval_log.rows, "train_rows": train_log.rows,
            "window": window, "window_step": window_start[0]})

    with _StopFlag() as stop:
        try:
            while True:
                if (step % every_eval == 0 or step == total) and step not in evaluated:
                    row = {"step": step, "frame": frame, "episode": driver.episode,
                           "time": round(elapsed(), 3), **driver.evaluate(agent, step)}
                    eval_log.append(row)
                    eval_log.flush()
                    evaluated.add(step)
                    progress.write(f"eval  step {step:>8}  frame {frame:>9}  score {row['score']:.4g}  "
                                   f"({row['time']:.1f} s)")
                if step >= total:
                    break
                if stop.raised:
                    raise _Stop()
                metrics = driver.step(agent, step)
                step += 1
                frame += driver.frames_per_step
                for key, value in metrics.items():
                    window.setdefault(key, []).append(value)
                if step % every_log == 0 or step == total:
                    tick = time.perf_counter()
                    fps = (step - window_start[0]) * driver.frames_per_step / max(tick - window_start[1], 1e-9)
                    train_log.append({"step": step, "frame": frame, "episode": driver.episode,
                                      "time": round(elapsed(), 3), "fps": round(fps, 1),
                                      **{k: float(np.mean(v)) for k, v in window.items()}})
                    window, window_start = {}, (step, tick)
                    progress.update(step)
                if every_save and step % every_save == 0:
                    checkpoint()
        except (_Stop, KeyboardInterrupt):
            checkpoint()
            info.write(status="interrupted")
            progress.close()
            driver.close(keep=True)
            raise SystemExit(143) from None
        except BaseException:
            info.write(status="failed")
            progress.close()
            raise
    progress.close()
    train_log.flush()
    if config.save:
        checkpoint(finished=True)
    driver.close(keep=bool(config.replay.save))
    final = eval_log.rows[-1]["score"] if eval_log.rows else None
    info.write(status="complete", ended=now(), final_score=final, steps=step, frames=frame)
    return agent
