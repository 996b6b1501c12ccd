"""run.json: what was run (resolved config and its hash, command, versions, commit) and how it ended."""

from __future__ import annotations

import datetime as _dt
import hashlib
import importlib.metadata
import inspect
import json
import platform
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ML import published
from ML.envs.base import EvaluationSettings, evaluation_episodes
from ML.fileio import read_json, write_json
from ML.runsettings import RunSettings
from ML.settings import defaults

# keys that change where or how a run is shown, not what it computes
_NOT_HASHED = {"progress", "load", "resume", "save", "save_per_steps", "results", "run_dir", "threads", "device",
               "debug", "overwrite", "trust_code"}
#: a running run rewrites its ``heartbeat`` this often; readers call it ``killed`` once it is ``STALE_SECONDS`` old
HEARTBEAT_SECONDS = 30.0
STALE_SECONDS = 300.0
_PACKAGES = ("unifiedml", "torch", "numpy", "gymnasium", "ale-py", "dm_control", "mujoco", "h5py", "torchvision")


def jsonable(value: Any) -> Any:
    """Config values as JSON: classes and functions by import path, other objects by type."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if inspect.isclass(value) or inspect.isfunction(value):
        return f"{value.__module__}.{value.__qualname__}"
    return f"<{type(value).__module__}.{type(value).__qualname__} object>"


def config_hash(config: Mapping[str, Any], recorded: Any = None) -> str:
    """The hash of what a config computes (run.json's ``config_hash``, a checkpoint's ``RunState``).

    ``recorded``: the config a run stored (run.json's or agent.pt's; every key its engine knew, since
    ``resolve_config`` merges ``_defaults.yaml`` first). A key it lacks whose value here is ``_defaults.yaml``'s
    (a setting added since, at its default) is left out, as that run's engine did: the hash it recorded. So a
    new setting never makes an existing run another config, while a changed value, or a changed default (the
    record holds the old one), still does."""
    kept = {k: v for k, v in jsonable(dict(config)).items() if k not in _NOT_HASHED}
    if isinstance(recorded, Mapping):
        kept = _as_recorded(kept, recorded, jsonable(defaults()))
    return hashlib.sha256(json.dumps(kept, sort_keys=True).encode()).hexdigest()[:16]


def _as_recorded(config: dict[str, Any], recorded: Mapping[str, Any], default: dict[str, Any]) -> dict[str, Any]:
    """``config`` without the keys ``recorded`` lacks that hold their default (in a section too: ``replay.*``)."""
    kept = {}
    for key, value in config.items():
        if key not in recorded:
            if key in default and value == default[key]:
                continue
        elif isinstance(value, dict) and isinstance(recorded[key], Mapping) and isinstance(default.get(key), dict):
            value = _as_recorded(value, recorded[key], default[key])
        kept[key] = value
    return kept


def same_config(config: Mapping[str, Any], recorded_hash: Any, recorded: Any) -> bool:
    """Whether a run's record (its ``config_hash`` and stored config) is of ``config``: what decides whether the
    same command resumes an unfinished run, or leaves a complete one as it is rather than refusing it."""
    return bool(recorded_hash) and recorded_hash == config_hash(config, recorded)


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    return found


def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).parent)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def protocol_card(spec: Any, agent: Any, run: RunSettings, evaluation: EvaluationSettings,
                  learner: Mapping[str, Any], frames_per_step: int, frames: int | None = None) -> dict[str, Any]:
    """The settings that decide whether two results are comparable (run.json ``protocol``; ``None``: not
    applicable to this kind of task): the environment's and, for RL, the agent's (``learner``: its
    ``ML.published.agent_card``), with ``reference``: the nearest published configuration and every difference
    (``ML.published.compare``). Frames are environment frames (agent steps x action repeat); for datasets,
    samples. ``frames``: the frames trained where they are not ``train_steps`` x ``frames_per_step`` (one task of
    several trained together)."""
    info = spec.info or {}
    rl = spec.suite not in ("Classify", "Generate")
    steps = int(run.train_steps or 0)
    budget = steps * int(frames_per_step) if frames is None else int(frames)
    if not rl:
        return {"observation": "x".join(map(str, spec.obs_shape)), "frame_budget": budget,
                "final_score": f"the last evaluation on the test set, after {budget} training samples"}
    if spec.discrete:
        kind = ("full" if info.get("full_action_space") else "minimal") if spec.suite == "Atari" else "discrete"
        actions = f"{kind} ({spec.num_actions} actions)"
    else:
        actions = f"continuous {list(spec.action_shape or [])}"
    max_frames = {"Atari": info.get("max_episode_frames"),
                  "DMC": info.get("episode_steps")}.get(spec.suite, info.get("max_episode_steps"))
    episodes = int(evaluation.evaluate_episodes or 0)
    final = evaluation_episodes(evaluation, steps, info, last=True)
    pixels = len(spec.obs_shape) == 3
    card = {
        "observation": ("pixels " + "x".join(map(str, spec.obs_shape[1:]))) if pixels else "states",
        "sticky_actions": info.get("sticky_actions", None),
        "action_set": actions,
        "noop_max": info.get("noop_max"),
        "episode_starts": info.get("starts"),
        "terminal_on_life_loss": info.get("terminal_on_life_loss"),
        "max_episode_frames": max_frames,
        "action_repeat": int(spec.action_repeat or 1),
        "frame_stack": int(info.get("frame_stack") or 1),
        "eval_epsilon": float(agent.eval_eps) if hasattr(agent, "eval_eps") else None,
        "eval_episodes": episodes,
        "final_eval_episodes": final,
        "eval_envs": min(final, int(evaluation.evaluate_envs or 16))
        if final > 1 and hasattr(agent, "act_batch") and not evaluation.vlog else 1,  # collectors/evaluation.py
        "frame_budget": budget,
        "final_score": f"mean return of {final} evaluation episodes at {budget} env frames (the last evaluation)",
        **learner,
    }
    reference = published.compare(card, spec.suite)
    if reference is not None:
        card["reference"] = reference
    return card


class RunInfo:
    """The run's record, rewritten atomically whenever its status changes and every ``HEARTBEAT_SECONDS``."""

    def __init__(self, path: Path, identity: dict[str, Any], config: dict[str, Any], env: dict[str, Any],
                 command: list[str], previous: dict[str, Any] | None = None):
        self.path = path
        self.data: dict[str, Any] = {
            "status": "running",
            **identity,
            "config": jsonable(config),
            "config_hash": config_hash(config),
            "command": " ".join(command),
            "argv": list(command),
            "versions": versions(),
            "git_commit": git_commit(),
            "started": (previous or {}).get("started", now()),
            "resumed": (previous or {}).get("resumed", []) + ([now()] if previous else []),
            "ended": None,
            "final_score": None,
            "env": jsonable(env),
            "heartbeat": now(),
        }
        self._lock = threading.Lock()

    def write(self, **fields: Any) -> None:
        with self._lock:
            self.data.update(fields, heartbeat=now())
            write_json(self.path, self.data)

    @contextmanager
    def heartbeat(self, every: float = HEARTBEAT_SECONDS) -> Iterator[None]:
        """While inside, a daemon thread rewrites run.json's ``heartbeat`` every ``every`` seconds (also
        through long evaluations); a killed process stops beating, so readers can tell it from a live one."""
        stop = threading.Event()

        def beat() -> None:
            while not stop.wait(every):
                self.write()

        thread = threading.Thread(target=beat, name="run.json heartbeat", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()

    read = staticmethod(read_json)


def status(info: dict[str, Any] | None, now_s: float | None = None) -> str:
    """A run's status as readers report it: ``running`` with a heartbeat older than ``STALE_SECONDS`` is
    ``killed`` (a record without one, from before heartbeats, keeps its status); ``unreadable`` when there is
    no record."""
    if info is None:
        return "unreadable"
    recorded = str(info.get("status", "unknown"))
    if recorded != "running" or not info.get("heartbeat"):
        return recorded
    try:
        beat = _dt.datetime.fromisoformat(str(info["heartbeat"])).timestamp()
    except ValueError:
        return "killed"
    return "killed" if (time.time() if now_s is None else now_s) - beat > STALE_SECONDS else "running"


def command_line() -> list[str]:
    return [Path(sys.argv[0]).name, *sys.argv[1:]]
