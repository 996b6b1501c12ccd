"""One writer per run directory: an exclusive lock held for the run's life.

``hold(run_dir)`` takes a ``flock`` on ``.<name>.lock`` beside the run directory (beside it, so the lock
outlives the swap that replaces a complete run, and the run directory holds only the run's files). The file
names its holder (pid, host, start time), which a second ``ML`` on the same directory reports when it stops.
The kernel drops the lock of a process that dies, so the next ``ML`` takes a dead holder's lock over. Where
the filesystem has no ``flock`` (some network mounts), the run goes on unlocked and says so.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ML.errors import UserError

#: flock errors that mean "this filesystem cannot lock", not "someone else holds it"
_UNSUPPORTED = {errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EINVAL, errno.ENOSYS}
#: the lock files this process holds open. A forked child (a data worker) closes its copies at once: a lock
#: belongs to the open file, so a worker outliving a killed run would otherwise keep its directory locked.
_HELD: set[int] = set()


def _close_in_child() -> None:
    for fd in _HELD:
        try:
            os.close(fd)
        except OSError:
            pass
    _HELD.clear()


os.register_at_fork(after_in_child=_close_in_child)


@dataclass
class Lock:
    path: Path
    status: str  # run.json's ``lock``: "held", or "unavailable (why)" where the filesystem cannot lock


def lock_path(run_dir: Path) -> Path:
    run_dir = Path(os.path.abspath(run_dir))
    return run_dir.parent / f".{run_dir.name}.lock"


def _holder(fd: int) -> str:
    try:
        info = json.loads(os.pread(fd, 4096, 0) or b"{}")
        return f"pid {info['pid']} on {info['host']}, started {info['started']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "a process that has not yet recorded itself"


def _made_parents(folder: Path) -> list[Path]:
    """Create ``folder`` and its missing parents; the ones created, deepest first (removed again if empty)."""
    missing = [p for p in [folder, *folder.parents] if not p.exists()]
    folder.mkdir(parents=True, exist_ok=True)
    return missing


@contextmanager
def hold(run_dir: Path, started: str = "") -> Iterator[Lock]:
    """Hold ``run_dir``'s lock while inside; a ``UserError`` naming the holder when another process has it."""
    path = lock_path(run_dir)
    made = _made_parents(path.parent)
    fd, status = -1, "held"
    try:
        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _holder(fd)
                os.close(fd)
                fd = -1
                raise UserError(f"{run_dir} is being written by another ML ({holder}); wait for it to end, or "
                                "stop it first: one run directory takes one writer") from None
            except OSError as e:
                if e.errno not in _UNSUPPORTED:
                    raise
                status = f"unavailable ({e.strerror}): a second ML on this run directory is not stopped"
                print(f"ML: warning: cannot lock {path}: {status}", file=sys.stderr, flush=True)
                break
            try:  # a holder that released between our open and flock unlinked this file: lock the live one
                live = os.stat(path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                live = False
            if live:
                break
            os.close(fd)
            fd = -1
        record = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "started": started}).encode()
        os.ftruncate(fd, 0)
        os.pwrite(fd, record, 0)
        _HELD.add(fd)
        yield Lock(path, status)
    finally:
        _HELD.discard(fd)
        if fd >= 0:
            if status == "held":
                path.unlink(missing_ok=True)  # still holding it: a waiter that opened it retries (see above)
            os.close(fd)
        for folder in made:
            try:
                folder.rmdir()
            except OSError:
                break
