"""agent.pt: the whole agent (optimisers included) plus the counters and RNG states to resume from."""

from __future__ import annotations

import errno
import os
import pickle
import random
import shutil
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ML.errors import UserError
from ML.fileio import atomic_write

FORMAT = "unifiedml-agent"
VERSION = 1


def rng_states() -> dict[str, Any]:
    return {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}


def restore_rng(states: dict[str, Any]) -> None:
    random.setstate(states["python"])
    np.random.set_state(states["numpy"])
    torch.set_rng_state(states["torch"])


def save(path: str | Path, agent: Any, state: dict[str, Any]) -> None:
    """Write atomically: a checkpoint is whole or absent, never half-written."""
    payload = {"format": FORMAT, "version": VERSION, "agent": agent, "state": state, "rng": rng_states()}

    def write(tmp: Path) -> None:
        try:
            torch.save(payload, tmp)
        except RuntimeError as e:  # torch's writer reports a full disk as a RuntimeError, errno lost
            if shutil.disk_usage(tmp.parent).free >= 1 << 20:
                raise
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path)) from e

    atomic_write(path, write)


def read(path: str | Path) -> dict[str, Any]:
    """The checkpoint at ``path``; a missing, corrupt or foreign file is a one-line UserError."""
    path = Path(path)
    if path.is_dir():
        path = path / "agent.pt"
    if not path.is_file():
        raise UserError(f"no checkpoint at {path}; train with save=true first or pass load=<path to agent.pt>")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=False)
    except (pickle.UnpicklingError, zipfile.BadZipFile, RuntimeError, EOFError, ValueError, OSError) as e:
        raise UserError(f"checkpoint {path} is corrupt or unreadable ({type(e).__name__}); delete it and retrain")\
            from None
    except (ModuleNotFoundError, AttributeError) as e:
        raise UserError(f"checkpoint {path} needs code that is not importable here ({e}); run from the "
                        "directory holding the files its architectures came from") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise UserError(f"{path} is not a UnifiedML checkpoint; pass the agent.pt of a run directory")
    return payload


def find(spec: Any, own: Path, results: str | Path = "results") -> Path:
    """Where ``load=`` points: ``true`` is this run's own agent.pt; a path; or keywords (nearest match)."""
    if spec is True:
        if not own.is_file():
            raise UserError(f"load=true but this run has no checkpoint at {own}; train it first (save=true)")
        return own
    text = str(spec)
    path = Path(text).expanduser()
    if path.exists():
        return path / "agent.pt" if path.is_dir() else path
    words = [w.lower() for w in text.replace("/", " ").split()]
    root = Path(results)
    candidates = [p for p in root.rglob("agent.pt") if all(w in str(p).lower() for w in words)] \
        if root.is_dir() else []
    if not candidates:
        raise UserError(f"load={text!r}: no path, and no agent.pt under {root}/ whose path contains "
                        f"{' and '.join(map(repr, words))}; pass load=<path to agent.pt>")
    # nearest match: fewest extra path parts, then the most recent
    return min(candidates, key=lambda p: (len(p.parts), -p.stat().st_mtime))


def load_agent(spec: str | Path, results: str | Path = "results") -> Any:
    """The agent at a path or named by keywords, in eval mode, ready for inference."""
    agent = read(find(spec, Path("agent.pt") if spec is True else Path(str(spec)), results))["agent"]
    agent.eval()
    return agent
