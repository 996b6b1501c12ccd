"""The run: build driver and agent from a resolved config, then train/evaluate/checkpoint on schedule.

Data flows one way: config → driver + agent → rows → eval.csv / train.csv / agent.pt / run.json.
``ML.entry`` is the way in (and hands data-parallel runs to ``ML.distributed``, whose workers call ``train``).
"""

from __future__ import annotations

import random
import signal
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ML import checkpoints, ranks, threads, tracking
from ML.allocator import keep_freed_memory
from ML.checkpoints import RunState
from ML.drivers import make_driver
from ML.errors import UserError
from ML.hyperparams import Config
from ML.logs import CSVLog, Progress
from ML.runinfo import RunInfo, config_hash, now, protocol_card


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
    """The agent when none is named (``ML Dataset=CIFAR10 Model=Run.model``): by the kind of task —
    a classifier for labelled data, DQN for discrete actions, DrQ-v2 for continuous ones."""
    if spec.num_classes:
        return "ClassifierAgent"
    return "DQNAgent" if spec.discrete else "DrQV2Agent"


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
LOGS = ("eval.csv", "train.csv")


def _unfinished(ckpt_path: Path, config: Config) -> dict[str, Any] | None:
    """This run's own checkpoint, if it is unfinished and of the same config: the same command resumes it."""
    if not ckpt_path.is_file():
        return None
    payload = checkpoints.read(ckpt_path)
    state = checkpoints.run_state(payload)
    if state.finished or state.config_hash != config_hash(config):
        return None
    return payload


def resume_exactness(config: Config, spec: Any) -> dict[str, Any]:
    """run.json's ``resume_exact``: whether a killed run, started again, ends as an uninterrupted one would."""
    if ranks.world_size(config) > 1:
        return {"resume_exact": False, "resume_note": "data-parallel run: resume is off, it starts fresh"}
    if spec.info.get("terminal_on_life_loss"):
        return {"resume_exact": False, "resume_note": "a lost life ends a training episode mid-game, which a "
                "resume cannot rebuild by replaying the episode's actions"}
    return {"resume_exact": True}


def _refuse_replacing(run_dir: Path, config: Config) -> None:
    """A complete run of another config in this run's directory is kept unless ``overwrite=true``."""
    previous = RunInfo.read(run_dir / "run.json")
    if previous is None or previous.get("status") != "complete" or config.get("overwrite"):
        return
    if previous.get("config_hash") != config_hash(config):
        raise UserError(f"{run_dir} holds a complete run of another config (experiment, recipe, suite, task and "
                        "seed are the same); use another experiment=NAME, or overwrite=true to replace it")


def train(config: Config, command: list[str]) -> Any:
    """One process's run (``ML.entry.start`` is the way in, also for data-parallel runs); torch's thread
    count is the run's own (``ML.threads``) and the caller's again afterwards."""
    with threads.restored():
        if config.get("threads"):
            torch.set_num_threads(int(config.threads))
        return _train(config, command)


def _train(config: Config, command: list[str]) -> Any:
    malloc = keep_freed_memory()  # freed tensors stay in the process: no page faults per update (ML.allocator)
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
    target = config.Agent or default_agent(spec)
    if not resume:
        _refuse_replacing(run_dir, config)
    if payload is None:
        agent = checkpoints.build_agent(target, config, spec)
    elif resume and checkpoints.run_state(payload).config_hash == config_hash(config):
        agent = checkpoints.restore(payload, config, spec)  # this run's own objects (code-passed ones too)
    else:
        agent = _loaded(payload, config, spec)
    state = RunState()
    if resume:  # the same run continues: counters, RNGs, logs, replay
        state = checkpoints.run_state(payload)
        checkpoints.restore_rng(state.rng)
        print(f"ML: resuming {run_dir} from step {state.step}", flush=True)
    else:  # a fresh run never mixes with files of an earlier one
        kept = {"replay.h5"} if config.get("offline") or config.replay.load else set()  # learning from it
        for name in set(RUN_FILES) - kept:
            (run_dir / name).unlink(missing_ok=True)

    previous = RunInfo.read(run_dir / "run.json") if resume else None
    chosen = threads.choose(config, agent, (previous or {}).get("threads"))  # an MLP wants one thread
    torch.set_num_threads(chosen["threads"])
    env_info = {**spec.info, "action_repeat": spec.action_repeat, "malloc": malloc,
                **agent.describe()}  # agent: run-time choices
    info = RunInfo(run_dir / "run.json", ident, config, env_info, command, previous)
    info.data.update(resume_exactness(config, spec))
    info.data["threads"] = chosen
    info.data["protocol"] = protocol_card(config, spec, agent, driver.frames_per_step)  # comparability (ML.runinfo)
    logs = {name: CSVLog(run_dir / name, state.logs.get(name) if resume else None) for name in LOGS}
    eval_log, train_log = tracking.track(config, info, logs["eval.csv"], logs["train.csv"])  # wandb=true
    driver.open(run_dir, resume, state.driver or None)
    info.write()
    with info.heartbeat():
        return _loop(config, driver, agent, (target, spec), info, eval_log, train_log, state, ckpt_path)


def _loaded(payload: dict[str, Any], config: Config, spec: Any) -> Any:
    """``load=`` another checkpoint: its agent as it was built; from this run's config when the checkpoint's
    own config cannot rebuild it (objects passed in code)."""
    try:
        return checkpoints.restore(payload)
    except UserError:
        return checkpoints.restore(payload, config, spec)


def _loop(config: Config, driver: Any, agent: Any, build: tuple[Any, Any], info: RunInfo, eval_log: CSVLog,
          train_log: CSVLog, state: RunState, ckpt_path: Path) -> Any:
    total = int(config.train_steps)
    every_eval = int(config.evaluate_per_steps) or total or 1
    every_log = max(int(config.log_per_steps), 1)
    every_save = int(config.save_per_steps or 0)
    step, frame, evaluated = state.step, state.frame, state.evaluated
    progress = Progress(total, step, config.progress, desc=f"{info.data['task']} seed {info.data['seed']}")
    clock = time.perf_counter() - state.time
    window = state.window  # metrics since the last train.csv row
    window_start = (state.window_step, time.perf_counter())

    def elapsed() -> float:
        return time.perf_counter() - clock

    def checkpoint(finished: bool = False) -> None:
        target, spec = build
        driver.before_checkpoint()
        checkpoints.save(ckpt_path, agent, target, config, spec, RunState(
            step=step, frame=frame, time=elapsed(), finished=finished, config_hash=info.data["config_hash"],
            evaluated=evaluated, window=window, window_step=window_start[0],
            logs={"eval.csv": eval_log.keep(), "train.csv": train_log.keep()}, driver=driver.state(),
            rng=checkpoints.rng_states()))

    with _StopFlag() as stop:
        try:
            while True:
                if (step % every_eval == 0 or step == total) and step > evaluated:
                    row = {"step": step, "frame": frame, "episode": driver.episode,
                           "time": round(elapsed(), 3), **driver.evaluate(agent, step)}
                    eval_log.append(row)
                    evaluated = step
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
    if config.save:
        checkpoint(finished=True)
    driver.close(keep=bool(config.replay.save))
    final = float(eval_log.last["score"]) if eval_log.last else None
    info.write(status="complete", ended=now(), final_score=final, steps=step, frames=frame)
    return agent
