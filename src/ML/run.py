"""The run: build driver and agent from a resolved config, then train/evaluate/checkpoint on schedule.

Data flows one way: config → driver + agent → rows → eval.csv / train.csv / agent.pt / run.json.
``ML.entry`` is the way in (and hands data-parallel runs to ``ML.distributed``, whose workers call ``train``).
"""

from __future__ import annotations

import random
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ML import checkpoints, published, ranks, runlock, runplace, stops, threads, tracking
from ML.accelerate import AccelSettings
from ML.agents.base import AgentSettings
from ML.allocator import keep_freed_memory
from ML.checkpoints import RunState, default_agent
from ML.drivers import make_driver
from ML.drivers.settings import InteractiveSettings, ReplaySettings, SupervisedSettings
from ML.envs.base import EvaluationSettings
from ML.errors import UserError
from ML.hyperparams import Config
from ML.hyperparams.names import Unresolved
from ML.layout import run_dir
from ML.logs import CSVLog
from ML.progress import Progress, set_progress
from ML.runinfo import RunInfo, jsonable, now, protocol_card, same_config
from ML.runsettings import RunSettings


def identity(run: RunSettings, spec: Any) -> dict[str, Any]:
    """The run's place in the results tree: experiment, recipe, suite, task, seed."""
    recipe = Path(str(run.task)).stem if run.task else "custom"
    return {"experiment": str(run.experiment), "recipe": recipe, "suite": spec.suite, "task": spec.task,
            "seed": int(run.seed)}


def run_directory(run: RunSettings, ident: dict[str, Any]) -> Path:
    if run.run_dir:
        return Path(run.run_dir)
    return run_dir(run.results, ident["experiment"], ident["recipe"], ident["suite"], ident["task"],
                   ident["seed"])


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


LOGS = ("eval.csv", "train.csv")


def _of_config(payload: dict[str, Any], config: Config) -> bool:
    """Whether a checkpoint was written by this config (``ML.runinfo.same_config``: by its hash and stored
    config, so a setting added since, at its default, does not make it another's)."""
    saved = payload.get("agent")  # checked (``checkpoints.saved_agent``) where it is loaded
    return same_config(config, checkpoints.run_state(payload).config_hash,
                       saved.get("config") if isinstance(saved, dict) else None)


def _unfinished(ckpt_path: Path, config: Config) -> dict[str, Any] | None:
    """This run's own checkpoint, if it is unfinished and of the same config: the same command resumes it.
    A finished one whose run.json is not complete (killed in between) resumes too, and completes at once."""
    if not ckpt_path.is_file():
        return None
    payload = checkpoints.read(ckpt_path)
    state = checkpoints.run_state(payload)
    if not _of_config(payload, config):
        return None
    if state.finished and (RunInfo.read(ckpt_path.parent / "run.json") or {}).get("status") == "complete":
        return None
    return payload


def resume_exactness(config: Mapping[str, Any], spec: Any, previous: dict[str, Any] | None = None,
                     state: RunState | None = None) -> dict[str, Any]:
    """run.json's ``resume_exact``: whether a killed run, started again, ends as an uninterrupted one would.
    A resume (``previous``: the run.json it continues, ``state``: its checkpoint's) keeps an earlier ``false``
    of this run, and is not exact from a replay that had overwritten frames."""
    if previous and previous.get("resume_exact") is False and "resume_inexact_at" in previous:
        return {k: previous[k] for k in ("resume_exact", "resume_note", "resume_inexact_at")}
    replays = (state.driver.get("replay") if state else None) or []
    if state is not None and any(r.get("wrapped") for r in (replays if isinstance(replays, list) else [replays])):
        return {"resume_exact": False, "resume_inexact_at": state.step, "resume_note": (
            f"resumed at step {state.step} from a replay that had overwritten its oldest frames (replay.capacity): "
            "it reloads in another order, so samples differ from then on")}
    if ranks.world_size(AccelSettings.from_config(config)) > 1:
        return {"resume_exact": False, "resume_note": "data-parallel run: resume is off, it starts fresh"}
    if InteractiveSettings.from_config(config).stream:
        return {"resume_exact": False, "resume_note": "stream=true keeps no replay on disk: a resume learns "
                "from an empty one again"}
    if spec.info.get("terminal_on_life_loss"):
        return {"resume_exact": False, "resume_note": "a lost life ends a training episode mid-game, which a "
                "resume cannot rebuild by replaying the episode's actions"}
    return {"resume_exact": True}


def _shape(spec: Any) -> dict[str, Any]:
    """What an agent's networks are shaped by: a checkpoint fits a task of the same."""
    keys = ("obs_shape", "discrete", "num_actions", "action_shape", "num_classes")
    values = {k: spec.get(k) if isinstance(spec, dict) else getattr(spec, k, None) for k in keys}
    return {k: list(v) if isinstance(v, (list, tuple)) else v for k, v in values.items()}


def _show(shape: dict[str, Any]) -> str:
    if shape["num_classes"]:
        out = f"{shape['num_classes']} classes"
    else:
        out = f"{shape['num_actions']} actions" if shape["discrete"] else f"actions {shape['action_shape']}"
    return f"observations {shape['obs_shape']}, {out}"


def _fits(payload: dict[str, Any], spec: Any, load: Any) -> None:
    """A checkpoint given to ``load=`` was trained on a task of this run's shapes (checked before anything in
    the run directory is touched)."""
    saved = checkpoints.saved_agent(payload)["spec"]
    if _shape(saved) != _shape(spec):
        raise UserError(f"load={load}: {payload['path']} was trained on {saved.get('suite')} {saved.get('task')} "
                        f"({_show(_shape(saved))}), not this run's {spec.suite} {spec.task} "
                        f"({_show(_shape(spec))}); load a checkpoint of this task, or start without load=")


def _load_source(run: RunSettings, run_dir: Path, spec: Any) -> tuple[dict[str, Any] | None, bool]:
    """``load=``: another run's checkpoint, read and checked to fit before the run directory is touched; or
    (None, True) for this run's own (checked too), which continues the run and is read again under the lock."""
    if not run.load:
        return None, False
    own = run_dir / "agent.pt"
    source = checkpoints.find(run.load, own, run.results)
    payload = checkpoints.read(source)
    _fits(payload, spec, run.load)
    if source.resolve() == own.resolve():
        return None, True
    return payload, False


def _prepare(run_dir: Path, config: Config, spec: Any, loaded: dict[str, Any] | None,
             own_load: bool) -> tuple[runplace.Place, dict[str, Any] | None, bool]:
    """Where this run writes (``ML.runplace``), the checkpoint it starts from and whether it resumes. Called
    under the run's lock, once every input is checked: nothing here is a name or type problem. ``config``:
    the whole resolved config, whose hash tells this run's checkpoint and record from another config's."""
    run = RunSettings.from_config(config)
    runplace.recover(run_dir)
    previous = runplace.record(run_dir)
    replay = ReplaySettings.from_config(config).replay
    learns_from_it = InteractiveSettings.from_config(config).offline or replay.get("load")
    kept = ("replay.h5",) if learns_from_it else ()
    if previous is None or previous.get("status") != "complete":
        place = runplace.Place(run_dir, run_dir)
    elif own_load:  # continue the complete run in a copy, swapped in when it completes
        place = runplace.beside(run_dir, None, reuse=_unfinished(runplace.staged(run_dir) / "agent.pt", config)
                              is not None)
    elif not run.overwrite:
        if loaded is not None:
            raise UserError(f"{run_dir} holds a complete run and load={run.load} would start it over; use "
                            "another experiment=NAME, or overwrite=true to replace it")
        if not same_config(config, previous.get("config_hash"), previous.get("config")):
            raise UserError(f"{run_dir} holds a complete run of another config (experiment, recipe, suite, task "
                            "and seed are the same); use another experiment=NAME, or overwrite=true to replace it")
        if ranks.world_size(AccelSettings.from_config(config)) == 1:
            return runplace.Place(run_dir, run_dir, done=True), None, False
        place = runplace.beside(run_dir, kept, reuse=False)  # data-parallel ranks all train: train it again
    else:
        resumable = run.resume and _unfinished(runplace.staged(run_dir) / "agent.pt", config) is not None
        place = runplace.beside(run_dir, kept, reuse=bool(resumable))
    own = place.work / "agent.pt"
    payload, resume = loaded, False
    if own_load:
        payload, resume = checkpoints.read(checkpoints.find(True, own)), True
        _fits(payload, spec, True)
    elif loaded is None and run.resume:
        payload = _unfinished(own, config)
        resume = payload is not None
    if not resume:
        place.clear(kept)
    return place, payload, resume


def _done(place: runplace.Place, agent: Any) -> Any:
    """The same config over its complete run: nothing trains; the saved agent (None without agent.pt)."""
    print(f"ML: {place.final} is complete with this config: nothing to train (overwrite=true trains it again)",
          flush=True)
    own = place.final / "agent.pt"
    if not own.is_file():
        return None
    payload = checkpoints.read(own)
    checkpoints.load_agent_state(agent, checkpoints.saved_agent(payload)["state"], own)
    return agent


def train(config: Config, command: list[str]) -> Any:
    """One process's run (``ML.entry.start`` is the way in, also for data-parallel runs); torch's thread
    count is the run's own (``ML.threads``)."""
    run, accel = RunSettings.from_config(config), AccelSettings.from_config(config)
    if accel.threads:
        torch.set_num_threads(int(accel.threads))
    malloc = keep_freed_memory()  # freed tensors stay in the process: no page faults per update (ML.allocator)
    set_progress(run.progress)  # also for what waits before the training bar (a replay loading)
    seed_everything(int(run.seed))
    driver = make_driver(config)
    spec = driver.spec
    ident = identity(run, spec)
    final_dir = run_directory(run, ident)
    target = AgentSettings.from_config(config).Agent or default_agent(spec)
    # every name and argument is checked (by building), and load='s file, before the run directory is touched
    agent = checkpoints.build_agent(target, config, spec)
    loaded, own_load = _load_source(run, final_dir, spec)
    with runlock.hold(final_dir, now()) as lock:
        place, payload, resume = _prepare(final_dir, config, spec, loaded, own_load)
        if place.done:
            return _done(place, agent)
        with place.replacing():  # beside a complete run: swapped in when complete, discarded when failed
            return _train_in(place.work, config, command, driver, agent, (target, spec, ident),
                             (payload, resume), {"malloc": malloc, "lock": lock.status})


def _train_in(run_dir: Path, config: Config, command: list[str], driver: Any, agent: Any,
              build: tuple[Any, Any, dict[str, Any]], start: tuple[dict[str, Any] | None, bool],
              record: dict[str, Any]) -> Any:
    """Train in ``run_dir`` (the run directory, or a sibling replacing a complete run): from ``start``'s
    checkpoint and resuming or not, ``record`` going to run.json (malloc settings, the lock's status)."""
    target, spec, ident = build
    payload, resume = start
    own = payload if resume else None  # this run's own checkpoint, continued
    ckpt_path = run_dir / "agent.pt"
    if own is not None and _of_config(own, config):
        checkpoints.load_agent_state(agent, checkpoints.saved_agent(own)["state"], ckpt_path)
    elif payload is not None:
        agent = _loaded(payload, config, spec)
    state = RunState()
    if own is not None:  # the same run continues: counters, RNGs, logs, replay
        state = checkpoints.run_state(own)
        checkpoints.restore_rng(state.rng)
        print(f"ML: resuming {run_dir} from step {state.step}", flush=True)

    previous = RunInfo.read(run_dir / "run.json") if resume else None
    chosen = threads.choose(AccelSettings.from_config(config), agent,  # an MLP wants one thread
                            SupervisedSettings.from_config(config).batch_size, (previous or {}).get("threads"))
    torch.set_num_threads(chosen["threads"])
    env_info = {**spec.info, "action_repeat": spec.action_repeat, "malloc": record["malloc"],
                **agent.describe()}  # agent: run-time choices
    info = RunInfo(run_dir / "run.json", ident, config, env_info, command, previous)
    info.data.update(resume_exactness(config, spec, previous, state if resume else None))
    info.data["threads"] = chosen
    info.data["protocol"] = (protocol_card(spec, agent, RunSettings.from_config(config),  # comparability
                                           EvaluationSettings.from_config(config), published.agent_card(config),
                                           driver.frames_per_step)
                             if spec.suite != "Together" else None)  # together: each task's recipe (env.together)
    info.data["lock"] = record["lock"]  # one writer (ML.runlock), or why not
    logs = {name: CSVLog(run_dir / name, state.logs.get(name) if resume else None) for name in LOGS}
    eval_log, train_log = tracking.track(config, info, logs["eval.csv"], logs["train.csv"])  # wandb=true
    with stops.Signals() as signals:  # from here on, a stop signal ends the run at its next consistent point
        driver.open(run_dir, resume, state.driver or None)
        stops.point("opened")  # the replay made, run.json not yet: a run killed here starts afresh
        info.write()
        with info.heartbeat():
            return _loop(config, driver, agent, (target, spec), info, eval_log, train_log, state, ckpt_path,
                         signals)


def _loaded(payload: dict[str, Any], config: Config, spec: Any) -> Any:
    """``load=`` another checkpoint: its agent as it was built; from this run's config when the checkpoint's
    own config names what is not here (objects passed in code). Code it names outside the engine's libraries
    is built only with ``trust_code=true``; any other refusal of its names stands."""
    try:
        return checkpoints.restore(payload, trust=RunSettings.from_config(config).trust_code)
    except Unresolved:
        return checkpoints.restore(payload, config, spec)


def _loop(config: Config, driver: Any, agent: Any, build: tuple[Any, Any], info: RunInfo, eval_log: CSVLog,
          train_log: CSVLog, state: RunState, ckpt_path: Path, signals: stops.Signals) -> Any:
    """The schedule (``RunSettings``) of steps, evaluations, train.csv rows and checkpoints; ``config`` is what
    each checkpoint stores, to rebuild the agent from."""
    run = RunSettings.from_config(config)
    total = int(run.train_steps)
    every_eval = int(run.evaluate_per_steps) or total or 1
    every_log = max(int(run.log_per_steps), 1)
    every_save = int(run.save_per_steps or 0)
    step, frame, evaluated = state.step, state.frame, state.evaluated
    progress = Progress(total, step, run.progress, desc=f"{info.data['task']} seed {info.data['seed']}")
    clock = time.perf_counter() - state.time
    window = state.window  # metrics since the last train.csv row
    window_start = (state.window_step, time.perf_counter())

    def elapsed() -> float:
        return time.perf_counter() - clock

    saved = step if state.config_hash else -1  # the step of the last checkpoint

    def checkpoint(finished: bool = False) -> None:
        nonlocal saved
        saved = step
        target, spec = build
        driver.before_checkpoint()
        checkpoints.save(ckpt_path, agent, target, config, spec, RunState(
            step=step, frame=frame, time=elapsed(), finished=finished, config_hash=info.data["config_hash"],
            evaluated=evaluated, window=window, window_step=window_start[0],
            logs={"eval.csv": eval_log.keep(), "train.csv": train_log.keep()}, driver=driver.state(),
            rng=checkpoints.rng_states()))

    def evaluate() -> dict[str, Any]:
        """The driver's evaluation; stopped in the middle, the random generators go back to where they were
        before it, so the checkpoint is the moment before it and a resume evaluates again, exactly."""
        before = checkpoints.rng_states(), checkpoints.generator_states(agent)
        with progress.evaluation(step) as show:
            def tick(done: int, total: int) -> None:
                show(done, total)
                stops.point("evaluate")

            try:
                row: dict[str, Any] = driver.evaluate(agent, step, progress=tick)
                return row
            except stops.Stop:
                checkpoints.restore_rng(before[0])
                checkpoints.load_generator_states(agent, before[1])
                raise

    # SIGINT / SIGTERM (ML.stops): a checkpoint at the last consistent point, then exit 128 + the signal
    try:
        while True:
            if (step % every_eval == 0 or step == total) and step > evaluated:
                row = {"step": step, "frame": frame, "episode": driver.episode,
                       "time": round(elapsed(), 3), **evaluate()}
                eval_log.append(row)
                evaluated = step
                stops.point("eval_row")
                tasks = "".join(f"  {k[6:]} {v:.4g}" for k, v in row.items() if k.startswith("score."))
                progress.write(f"eval  step {step:>8}  frame {frame:>9}  score {row['score']:.4g}{tasks}  "
                               f"({row['time']:.1f} s)")
            if step >= total:
                break
            signals.check()
            metrics = driver.step(agent, step)
            step += 1
            frame += driver.frames_per_step
            for key, value in metrics.items():
                window.setdefault(key, []).append(value)
            stops.point("step")
            if step % every_log == 0 or step == total:
                tick = time.perf_counter()
                fps = (step - window_start[0]) * driver.frames_per_step / max(tick - window_start[1], 1e-9)
                train_log.append({"step": step, "frame": frame, "episode": driver.episode,
                                  "time": round(elapsed(), 3), "fps": round(fps, 1),
                                  **{k: float(np.mean(v)) for k, v in window.items()}})
                window, window_start = {}, (step, tick)
                progress.update(step)
                stops.point("train_row")
            if every_save and step % every_save == 0:
                checkpoint()
    except stops.Stop as stop:
        restarts = int(build[1].info.get("num_envs") or 1) > 1  # its checkpoints restart the games
        if restarts and saved != step:
            info.data.update(resume_exact=False, resume_inexact_at=step, resume_note=(
                f"stopped at step {step}, between checkpoints: the env.num_envs games restart there"))
        if not restarts or saved != step:
            checkpoint()
        info.write(status="interrupted")
        progress.close()
        driver.close(keep=True)
        print(f"ML: stopped by {stop} at step {step}: checkpoint saved; the same command resumes it", flush=True)
        raise SystemExit(stop.code) from None
    except BaseException:
        info.write(status="failed")
        progress.close()
        raise
    progress.close()  # a signal from here on waits the few seconds until the run is complete
    if run.save:
        checkpoint(finished=True)  # killed after it, before run.json says complete: a resume completes
        stops.point("finished")
    final = float(eval_log.last["score"]) if eval_log.last else None
    ended = getattr(driver, "ended_info", None)  # tasks trained together: each task's card, now its frames
    env = {**info.data["env"], **jsonable(ended(agent))} if ended is not None else info.data["env"]
    info.write(status="complete", ended=now(), final_score=final, steps=step, frames=frame, env=env)
    driver.close(keep=bool(ReplaySettings.from_config(config).replay.get("save", True)))
    if signals.signum is not None:  # the run is complete: stop here (a sweep starts no next run)
        raise SystemExit(stops.Stop(signals.signum).code)
    return agent
