"""Where a run writes, decided under its lock (``ML.runlock``): nothing lost, nothing run twice.

A complete run is never changed in place. A run that replaces it (``overwrite=true``, ``offline=true`` over
it with ``overwrite=true``) or continues it (``load=true``) trains in a sibling ``.<name>.new`` and is swapped
in only once complete (``Place.commit``); a kill before that leaves the old run whole, and the same command
resumes the sibling. ``recover`` finishes or undoes a swap that a kill cut short. The same config over a
complete run trains nothing (``Place.done``). A fresh run clears, in place, only the files of a run it can
read as its own and unfinished.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ML.errors import UserError
from ML.fileio import read_json

RUN_FILES = ("eval.csv", "train.csv", "replay.h5", "agent.pt", "run.json")
#: files that exist only after run.json was first written: without one they are not a run ML can clear
_AFTER_RECORD = ("eval.csv", "train.csv", "agent.pt")


def _sibling(run_dir: Path, suffix: str) -> Path:
    return run_dir.parent / f".{run_dir.name}.{suffix}"


def _complete(folder: Path) -> bool:
    info = read_json(folder / "run.json")
    return info is not None and info.get("status") == "complete"


def _sync(folder: Path) -> None:
    """Make renames in ``folder`` durable before the next step relies on them."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def recover(run_dir: Path) -> None:
    """Finish or undo a swap cut short (``Place.commit``): the run directory is the new run when it was
    complete, else the old one again; the old copy goes."""
    old, new = _sibling(run_dir, "old"), _sibling(run_dir, "new")
    if not old.exists():
        return
    if not run_dir.exists():
        os.rename(new if _complete(new) else old, run_dir)
        _sync(run_dir.parent)
    if old.exists():
        shutil.rmtree(old)


def record(run_dir: Path) -> dict[str, Any] | None:
    """The run directory's run.json; None when it has none. One that is there but unreadable, or run files
    without one, are not a run ML wrote: it refuses to clear them."""
    path = run_dir / "run.json"
    if path.exists():
        info = read_json(path)
        if info is None:
            raise UserError(f"{path} is not a readable run record, so ML will not replace the run around it; "
                            "restore it, or move the directory away")
        return info
    found = [name for name in _AFTER_RECORD if (run_dir / name).exists()]
    if found:
        raise UserError(f"{run_dir} holds {', '.join(found)} but no run.json: not a run ML wrote, so it is not "
                        "cleared; move those files away, or pass another run_dir= or experiment=")
    return None


@dataclass
class Place:
    """The run directory (``final``) and where this run writes (``work``: the same, or its sibling)."""

    final: Path
    work: Path
    done: bool = False  # a complete run of this config is there: nothing to train

    def clear(self, kept: Iterable[str] = ()) -> None:
        """A fresh run never mixes with files of an earlier one (``kept``: what it learns from)."""
        for name in set(RUN_FILES) - set(kept):
            (self.work / name).unlink(missing_ok=True)

    @contextmanager
    def replacing(self) -> Iterator[None]:
        """Around the training: a run beside the run directory is swapped in when it completes, and goes when
        it fails (an interrupted one, ``SystemExit``/``KeyboardInterrupt``, stays for the same command to
        resume)."""
        try:
            yield
        except Exception:
            if self.work != self.final:
                shutil.rmtree(self.work, ignore_errors=True)
            raise
        self.commit()

    def commit(self) -> None:
        """Swap a run trained beside the run directory in for the complete run there."""
        if self.work == self.final:
            return
        old = _sibling(self.final, "old")
        if self.final.exists():  # (unless it was moved away meanwhile)
            os.rename(self.final, old)
        os.rename(self.work, self.final)
        _sync(self.final.parent)
        shutil.rmtree(old, ignore_errors=True)


def beside(run_dir: Path, copied: Iterable[str] | None, reuse: bool) -> Place:
    """A sibling of the (complete) run directory to train in. ``reuse``: the sibling a killed run left is
    resumed as it is; otherwise it starts again with copies of ``copied`` from the run directory (``None``:
    all of it, for a run that continues the complete one)."""
    new = _sibling(run_dir, "new")
    if not reuse:
        if new.exists():
            shutil.rmtree(new)
        try:
            new.mkdir()
            paths = sorted(run_dir.rglob("*")) if copied is None else [run_dir / name for name in copied]
            for path in paths:  # one by one (not copytree), so a full disk is the OSError that says so
                target = new / path.relative_to(run_dir)
                if path.is_dir():
                    target.mkdir()
                elif path.is_file():
                    shutil.copy2(path, target)
        except BaseException:  # a full disk: no half copy left beside the run
            shutil.rmtree(new, ignore_errors=True)
            raise
    return Place(run_dir, new)


def staged(run_dir: Path) -> Path:
    """Where ``beside`` trains for ``run_dir``."""
    return _sibling(run_dir, "new")
