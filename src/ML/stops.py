"""Stop signals: SIGINT (^C) and SIGTERM (a scheduler preempting or cancelling the job) end a run cleanly.

While ``Signals`` is installed (the run loop), a signal only raises a flag: the loop checks it between steps,
where everything it would checkpoint is consistent, so no write is cut in half. Work that commits nothing, an
evaluation, runs inside ``abortable()``: there the handler raises ``Stop`` at once, the loop puts the random
generators back as they were before the evaluation, and the resumed run evaluates again from the same state.
A stop so takes at most one training step, or one environment step or forward pass of an evaluation, plus
the checkpoint. The process then exits with ``128 + signal`` (130 for ^C, 143 for SIGTERM).

Test hook (not a setting): ``ML_STOP_AT=<point>@<n>[:<SIGNAL>]`` makes the process send itself SIGNAL
(default TERM; INT, TERM or KILL) the n-th time it passes ``point``, so tests stop a run at an exact moment.
Points: ``opened`` (the driver opened its replay, run.json not yet written), ``step`` (a training step done),
``train_row`` / ``eval_row`` (a log row written), ``new_column`` (a row widened a log's header), ``evaluate`` (an
evaluation's progress: an episode or the dataset done), ``checkpoint`` (agent.pt written to its temporary name,
not yet renamed), ``flush`` (replay.h5 half appended: ``obs`` written, the other columns not) and ``finished``
(the last checkpoint written, run.json not yet complete).
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

HANDLED = (signal.SIGINT, signal.SIGTERM)


class Stop(BaseException):
    """A stop signal, raised where the run can stop: between steps, or inside an abortable evaluation (a
    ``BaseException``, like ``KeyboardInterrupt``, so that no ``except Exception`` in an env swallows it)."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def code(self) -> int:
        """The exit status: 128 + the signal, as a shell reports a process ended by it."""
        return 128 + self.signum


class Signals:
    """SIGINT and SIGTERM become ``signum`` while installed (a context manager; the main thread only)."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._abortable = False
        self._previous: dict[int, Any] = {}

    def __call__(self, signum: int, frame: Any) -> None:
        if self.signum is None:
            self.signum = signum
        if self._abortable:
            self._abortable = False
            raise Stop(self.signum)

    def check(self) -> None:
        """Raise ``Stop`` if a signal came."""
        if self.signum is not None:
            raise Stop(self.signum)

    def __enter__(self) -> Signals:
        global _active, _hook
        try:
            self._previous = {s: signal.signal(s, self) for s in HANDLED}
        except ValueError:  # not the main thread: leave signals alone
            return self
        _active, _hook = self, _parse_hook(os.environ.get("ML_STOP_AT", ""))
        return self

    def __exit__(self, *exc: Any) -> None:
        global _active, _hook
        for s, previous in self._previous.items():
            signal.signal(s, previous)
        if _active is self:
            _active, _hook = None, None


_active: Signals | None = None
_hook: list[Any] | None = None  # [point, passes left, signal]


@contextmanager
def abortable() -> Iterator[None]:
    """Work that commits nothing (an evaluation): a stop signal raises ``Stop`` here at once."""
    signals = _active
    if signals is None:
        yield
        return
    signals.check()
    signals._abortable = True
    try:
        yield
    finally:
        signals._abortable = False


def point(name: str) -> None:
    """A named moment of the run, for the ``ML_STOP_AT`` test hook; one comparison when it is unset."""
    if _hook is None or _hook[0] != name:
        return
    _hook[1] -= 1
    if _hook[1] == 0:
        os.kill(os.getpid(), _hook[2])


def _parse_hook(text: str) -> list[Any] | None:
    if not text:
        return None
    where, _, sig = text.partition(":")
    name, _, count = where.partition("@")
    return [name, int(count or 1), signal.Signals[f"SIG{sig or 'TERM'}"]]
