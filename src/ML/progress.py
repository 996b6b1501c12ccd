"""Progress with rate and ETA wherever a user waits, one tqdm-based implementation for all: the training bar
(``Progress``, with its evaluation bar) and ``counting`` (loading a replay, the pipeline reading runs).

``progress=`` decides how: ``true`` a bar, ``false`` nothing, ``auto`` (the default) a bar on a terminal and,
without one (a log file, snakemake's logs, a SLURM job), plain lines at most every ``PLAIN_EVERY`` seconds, so
a long wait still shows in a log and a short one writes nothing.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from tqdm import tqdm

PLAIN_EVERY = 30.0  # seconds between plain progress lines where there is no terminal
_setting: Any = "auto"  # the process's ``progress=`` (``set_progress``), for counts nobody passes one to


def set_progress(enabled: Any) -> None:
    """This process's ``progress=`` (auto, true, false), for what shows progress before the run's bar exists
    and takes no setting of its own (a replay loading at ``resume``/``offline``/``replay.load``)."""
    global _setting
    _setting = enabled


def mode(enabled: Any = None) -> str:
    """How progress shows: ``"bar"`` (true, or auto on a terminal), ``"lines"`` (auto without a terminal:
    a log file, snakemake's logs, a SLURM job) or ``"off"`` (false); ``None``: the process's setting."""
    enabled = _setting if enabled is None else enabled
    if enabled == "auto":
        return "bar" if sys.stderr.isatty() else "lines"
    return "bar" if enabled else "off"


@contextmanager
def counting(desc: str, unit: str, enabled: Any = None, every: float | None = None,
             position: int = 0) -> Iterator[Callable[[int, int], None]]:
    """``tick(done, total)`` as work goes: a tqdm bar with rate and ETA, gone when done (``mode`` "bar"); a
    plain line in the same words at most every ``every`` seconds (default ``PLAIN_EVERY``; ``"lines"``: a
    short job writes none); nothing (``"off"``). The bar starts at the first tick, which brings the total."""
    how = mode(enabled)
    every = PLAIN_EVERY if every is None else every
    bar: tqdm | None = None
    start = last = time.monotonic()

    def tick(done: int, total: int) -> None:
        nonlocal bar, last
        if how == "bar":
            if bar is None:
                bar = tqdm(total=total, desc=desc, unit=unit, dynamic_ncols=True, leave=False, position=position)
            bar.update(done - bar.n)
            if done == total:
                bar.refresh()  # the last count is drawn even within tqdm's minimum interval
        elif how == "lines" and time.monotonic() - last >= every:
            last = time.monotonic()
            line = tqdm.format_meter(done, total, last - start, prefix=desc, unit=unit,
                                     bar_format="{desc}: {n_fmt}/{total_fmt} {unit} ({percentage:.0f}%), "
                                                "{elapsed} elapsed, ETA {remaining} ({rate_fmt})")
            print(line, file=sys.stderr, flush=True)

    try:
        yield tick
    finally:
        if bar is not None:
            bar.close()


def counted(items: Sequence[Any], desc: str, unit: str, enabled: Any = None) -> Iterator[Any]:
    """``items`` one by one, ``counting`` them (an item counts once the loop asks for the next)."""
    with counting(desc, unit, enabled) as tick:
        for done, item in enumerate(items):
            tick(done, len(items))
            yield item
        tick(len(items), len(items))


class Progress:
    """A tqdm bar (rate and ETA) on a terminal; plain log lines otherwise."""

    def __init__(self, total: int, initial: int, enabled: Any = "auto", desc: str = ""):
        self.interactive = mode(enabled) == "bar"
        self.bar = tqdm(total=total, initial=initial, desc=desc, unit="step", dynamic_ncols=True,
                        smoothing=0.1) if self.interactive else None
        self.shown = initial

    @contextmanager
    def evaluation(self, step: int) -> Iterator[Callable[[int, int], None]]:
        """A second bar while an evaluation runs: ``tick(done, total)`` episodes (or 1 of 1 for a dataset),
        with rate and ETA, gone when it ends; silent where the training bar is."""
        with counting(f"eval  step {step}", "episode", self.interactive,
                      position=1 if self.bar is not None else 0) as tick:
            yield tick

    def update(self, step: int) -> None:
        if self.bar is not None:
            self.bar.update(step - self.shown)
            self.shown = step

    def write(self, line: str) -> None:
        if self.bar is not None:
            self.bar.write(line)
        else:
            print(line, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
